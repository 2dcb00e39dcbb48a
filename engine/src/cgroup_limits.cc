#include "cgroup_limits.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace veil::engine::internal {
namespace {

namespace fs = std::filesystem;

// The first line of a small file; empty when it cannot be read.
std::string FirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// A whole non-negative number of bytes or microseconds; -1 for anything else ("max", "-1", "").
long double Number(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 19) return -1;
  return std::stold(text);
}

// The value of `key` in a memory.stat file ("key value" lines); 0 when absent.
long double StatValue(const fs::path& path, const std::string& key) {
  std::ifstream in(path);
  std::string k, v;
  while (in >> k >> v) {
    if (k == key) return std::max<long double>(0, Number(v));
  }
  return 0;
}

// The folder of a cgroup (`relative`, from /proc/self/cgroup) below the mount `top`, and every
// folder above it up to `top`, leaf first. Inside a container the mount's root is usually the
// container's own group, so the leaf is missing there and its limits sit in `top` itself. A path
// that climbs out of the mount ("/../..": a group outside this cgroup namespace) gives nothing.
std::vector<fs::path> UpTo(const fs::path& top, const std::string& relative) {
  const fs::path rel = fs::path(relative).relative_path().lexically_normal();
  for (const auto& part : rel) {
    if (part == "..") return {};
  }
  std::vector<fs::path> dirs;
  for (fs::path p = rel; !p.empty() && p != "."; p = p.parent_path()) dirs.push_back(top / p);
  dirs.push_back(top);
  return dirs;
}

void TightenCpu(CgroupLimits* limits, long double quota, long double period) {
  if (quota <= 0 || period <= 0) return;
  const long double ratio = std::min<long double>(quota / period, 1 << 20);  // a cast beyond int is undefined
  const int cores = std::max(1, static_cast<int>(std::ceil(ratio - 1e-9L)));
  limits->cpu_cores = limits->cpu_cores == 0 ? cores : std::min(limits->cpu_cores, cores);
}

// `usage` counts the page cache, which the kernel drops before it reaches the limit: its inactive
// part (`inactive`) is taken off, as the kubelet's working set does.
void TightenMemory(CgroupLimits* limits, long double limit, long double usage, long double inactive) {
  if (limit < 0 || limit >= static_cast<long double>(1ULL << 62)) return;  // v1 writes "no limit" as a huge number
  const long double used = std::max<long double>(0, std::max<long double>(usage, 0) - inactive);
  const auto bytes = static_cast<size_t>(std::max<long double>(0, limit - used));
  limits->memory_left = limits->memory_limited ? std::min(limits->memory_left, bytes) : bytes;
  limits->memory_limited = true;
}

// The first of `names` below `root` that exists (v1 mounts "cpu", "cpu,cpuacct" or "cpuacct,cpu").
fs::path Mount(const fs::path& root, std::initializer_list<const char*> names) {
  std::error_code ec;
  for (const char* name : names) {
    if (fs::exists(root / name, ec)) return root / name;
  }
  return root / *names.begin();
}

}  // namespace

CgroupLimits ReadCgroupLimits(const std::string& root, const std::string& proc_self_cgroup) {
  CgroupLimits limits;
  std::ifstream in(proc_self_cgroup);
  std::string line;
  std::error_code ec;
  while (std::getline(in, line)) {
    // "ID:CONTROLLERS:PATH": v2 is "0::PATH"; v1 names its controllers ("4:memory:PATH", "2:cpu,cpuacct:PATH").
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers(1, ',');
    controllers.append(line, a + 1, b - a - 1).push_back(',');
    const std::string path = line.substr(b + 1);
    if (controllers == ",,") {  // v2: at the root, or at root/unified beside v1 (a hybrid system)
      const fs::path top = fs::exists(fs::path(root) / "cgroup.controllers", ec) ? fs::path(root) : fs::path(root) / "unified";
      for (const fs::path& dir : UpTo(top, path)) {
        std::istringstream cpu(FirstLine(dir / "cpu.max"));  // "QUOTA PERIOD", QUOTA "max" for none
        std::string quota, period;
        if (cpu >> quota >> period) TightenCpu(&limits, Number(quota), Number(period));
        const std::string max = FirstLine(dir / "memory.max");
        if (!max.empty()) {
          TightenMemory(&limits, Number(max), Number(FirstLine(dir / "memory.current")), StatValue(dir / "memory.stat", "inactive_file"));
        }
      }
    }
    if (controllers.find(",cpu,") != std::string::npos) {
      for (const fs::path& dir : UpTo(Mount(root, {"cpu", "cpu,cpuacct", "cpuacct,cpu"}), path)) {
        TightenCpu(&limits, Number(FirstLine(dir / "cpu.cfs_quota_us")), Number(FirstLine(dir / "cpu.cfs_period_us")));
      }
    }
    if (controllers.find(",memory,") != std::string::npos) {
      for (const fs::path& dir : UpTo(Mount(root, {"memory"}), path)) {
        const std::string max = FirstLine(dir / "memory.limit_in_bytes");
        if (!max.empty()) {
          TightenMemory(&limits, Number(max), Number(FirstLine(dir / "memory.usage_in_bytes")),
                        StatValue(dir / "memory.stat", "total_inactive_file"));
        }
      }
    }
  }
  return limits;
}

}  // namespace veil::engine::internal
