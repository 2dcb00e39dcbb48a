#include "veil/engine/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "cgroup_limits.h"
#include "default_dirs.h"

namespace veil::engine {
namespace {

constexpr int kMmapThreshold = 32 << 20;  // 1 MB kept memory flat too, but cost 35 % of the camera fps (page faults)
// A fixed mmap threshold also leaves the trim threshold at glibc's 128 KiB (no longer raised with
// it), so the free heap top went back to the kernel after nearly every tensor and was faulted in
// again for the next: an SSD detection took 270 ms instead of 42 (2 cores) in any program but
// `veil`, which set both (tools/cli.h). Up to this much free heap stays mapped for reuse.
constexpr int kTrimThreshold = 512 << 20;
// Single-threaded, LibTorch 1.13 takes other kernel paths (its choice of oneDNN for some convolutions
// looks at the thread count): detections differ in the last bits, and so do output bytes. With two
// threads or more the bytes do not depend on the count (measured with 2, 3, 4, 8 and 16), so Veil
// never runs with one.
constexpr int kMinThreads = 2;

// $VEIL_THREADS when it is a number in 1..1024.
std::optional<int> ThreadsFromEnv() {
  const char* env = std::getenv("VEIL_THREADS");
  if (env == nullptr) return std::nullopt;
  const int n = std::atoi(env);
  if (n < 1 || n > 1024) return std::nullopt;
  return n;
}

// Whether the user set a malloc parameter: its environment variable, or its glibc tunable.
bool UserSetMalloc(const char* env_var, const char* tunable) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return std::getenv(env_var) != nullptr || (tunables != nullptr && std::strstr(tunables, tunable) != nullptr);
}

}  // namespace

namespace internal {

std::string DefaultDataDir(const char* env_var, const std::string& in_tree, const std::string& installed_name) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (std::filesystem::is_directory(in_tree, ec)) return in_tree;
  return std::string(VEIL_INSTALLED_DATA_DIR) + "/" + installed_name;
}

}  // namespace internal

std::string DefaultModelsDir() { return internal::DefaultDataDir("VEIL_FACE_API_DIR", VEIL_FACE_API_MODELS_DIR, "face-api"); }

std::string ResolveModelsDir(const std::string& models_dir) {
  return models_dir.empty() ? DefaultModelsDir() : models_dir;
}

void InitRuntimeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    at::set_num_threads(std::max(ThreadsFromEnv().value_or(UsableCores()), kMinThreads));
    // glibc raises its mmap threshold each time a large block is freed, after which tensor-sized
    // blocks come from the heap, whose holes then never fit the next frame's sizes: a long video
    // grew to several GB. A fixed threshold (it turns the adjustment off) keeps memory flat. A
    // threshold the user set ($MALLOC_MMAP_THRESHOLD_, or GLIBC_TUNABLES) is kept.
    if (!UserSetMalloc("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold")) ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
    if (!UserSetMalloc("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold")) ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
    // OpenCV's FFmpeg backend prints FFmpeg's own errors ("moov atom not found") on stderr; Veil
    // reports an unreadable video itself, in one line. A level the user set is kept.
    ::setenv("OPENCV_FFMPEG_LOGLEVEL", "0", /*overwrite=*/0);  // AV_LOG_PANIC
  });
}

int RuntimeThreads() { return at::get_num_threads(); }

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) cores = CPU_COUNT(&set);
  const int quota = internal::ReadCgroupLimits().cpu_cores;
  return quota > 0 ? std::min(cores, quota) : cores;
}

std::optional<size_t> AvailableMemoryBytes() {
  std::optional<size_t> available;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  size_t kib = 0;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      available = kib * 1024;
      break;
    }
  }
  const internal::CgroupLimits limits = internal::ReadCgroupLimits();
  if (!limits.memory_limited) return available;
  return available ? std::min(*available, limits.memory_left) : limits.memory_left;
}

void ShareRuntimeThreads(int workers) {
  InitRuntimeOnce();
  if (ThreadsFromEnv() || workers <= 1) return;
  at::set_num_threads(std::max(UsableCores() / workers, kMinThreads));
}

}  // namespace veil::engine
