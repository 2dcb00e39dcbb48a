// A container's CPU quota and memory limit, read from cgroup v2 and v1 trees (fake ones here).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cgroup_limits.h"
#include "veil/engine/runtime.h"

using veil::engine::internal::CgroupLimits;
using veil::engine::internal::ReadCgroupLimits;
namespace fs = std::filesystem;

namespace {

struct FakeTree {
  fs::path root;
  FakeTree() {
    std::string d = (fs::temp_directory_path() / "veil-cgroup-XXXXXX").string();
    REQUIRE(::mkdtemp(d.data()) != nullptr);
    root = d;
  }
  ~FakeTree() { fs::remove_all(root); }
  void Put(const fs::path& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text << "\n";
  }
  CgroupLimits Read(const std::string& self) {
    Put("self-cgroup", self);
    return ReadCgroupLimits((root / "fs").string(), (root / "self-cgroup").string());
  }
};

}  // namespace

TEST_CASE("a cgroup v2 container's CPU quota is rounded up to whole cores and its memory limit leaves limit minus usage") {
  FakeTree t;
  t.Put("fs/cgroup.controllers", "cpu memory");
  t.Put("fs/app.slice/web/cpu.max", "150000 100000");
  t.Put("fs/app.slice/web/memory.max", "2147483648");
  t.Put("fs/app.slice/web/memory.current", "805306368");  // 768 MiB, of which 256 MiB inactive page cache
  t.Put("fs/app.slice/web/memory.stat", "anon 268435456\nfile 536870912\ninactive_file 268435456\nactive_file 268435456");
  const CgroupLimits l = t.Read("0::/app.slice/web\n");
  CHECK(l.cpu_cores == 2);
  CHECK(l.memory_limited);
  CHECK(l.memory_left == (size_t{3} << 29));  // 1.5 GiB: 2 GiB less 512 MiB in use
}

TEST_CASE("inside a container the cgroup mount's root is the container's group: its limits are read from there") {
  FakeTree t;
  // cgroup v1 as Docker shows it: /proc/self/cgroup names the host's path, which is not below the
  // mount; cpu is mounted as cpu,cpuacct.
  t.Put("fs/cpu,cpuacct/cpu.cfs_quota_us", "200000");
  t.Put("fs/cpu,cpuacct/cpu.cfs_period_us", "100000");
  t.Put("fs/memory/memory.limit_in_bytes", "1073741824");
  t.Put("fs/memory/memory.usage_in_bytes", "1073741824");  // at the limit: nothing left, still a limit
  CgroupLimits l = t.Read("4:cpu,cpuacct:/docker/0123abcd\n9:memory:/docker/0123abcd\n");
  CHECK(l.cpu_cores == 2);
  CHECK(l.memory_limited);
  CHECK(l.memory_left == 0);
  // A group outside this cgroup namespace: its limits are not in this tree at all.
  t.Put("fs/cgroup.controllers", "cpu memory");
  t.Put("fs/cpu.max", "100000 100000");
  l = t.Read("0::/../../system.slice/x\n");
  CHECK(l.cpu_cores == 0);
  l = t.Read("0::/\n");
  CHECK(l.cpu_cores == 1);
}

TEST_CASE("the tightest limit on the way up the cgroup tree applies, and 'max' is no limit") {
  FakeTree t;
  t.Put("fs/cgroup.controllers", "cpu memory");
  t.Put("fs/a/cpu.max", "50000 100000");  // half a core: still one
  t.Put("fs/a/b/cpu.max", "max 100000");
  t.Put("fs/a/b/memory.max", "max");
  t.Put("fs/a/memory.max", "1073741824");
  t.Put("fs/a/memory.current", "1273741824");  // over its limit: nothing left
  const CgroupLimits l = t.Read("0::/a/b\n");
  CHECK(l.cpu_cores == 1);
  CHECK(l.memory_limited);
  CHECK(l.memory_left == 0);
}

TEST_CASE("cgroup v1 quotas are read from the cpu and memory hierarchies, and their 'no limit' values mean none") {
  FakeTree t;
  t.Put("fs/cpu/docker/x/cpu.cfs_quota_us", "400000");
  t.Put("fs/cpu/docker/x/cpu.cfs_period_us", "100000");
  t.Put("fs/memory/docker/x/memory.limit_in_bytes", "4294967296");
  t.Put("fs/memory/docker/x/memory.usage_in_bytes", "1073741824");
  CgroupLimits l = t.Read("12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n");
  CHECK(l.cpu_cores == 4);
  CHECK(l.memory_left == (size_t{3} << 30));
  t.Put("fs/cpu/docker/x/cpu.cfs_quota_us", "-1");
  t.Put("fs/memory/docker/x/memory.limit_in_bytes", "9223372036854771712");
  l = t.Read("12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n");
  CHECK(l.cpu_cores == 0);
  CHECK_FALSE(l.memory_limited);
}

TEST_CASE("no cgroup files, an unreadable list or garbage in them mean no limit") {
  FakeTree t;
  CHECK(ReadCgroupLimits((t.root / "nothing").string(), (t.root / "missing").string()).cpu_cores == 0);
  t.Put("fs/cgroup.controllers", "");
  t.Put("fs/cpu.max", "lots 100000");
  t.Put("fs/memory.max", "-5");
  const CgroupLimits l = t.Read("0::/../../etc\n");
  CHECK(l.cpu_cores == 0);
  CHECK_FALSE(l.memory_limited);
  // This machine's own: no more cores than it has.
  CHECK(veil::engine::UsableCores() <= static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}
