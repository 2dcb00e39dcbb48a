// What the control groups of this process allow it: a CPU quota and a memory limit, as a container
// runtime (Docker --cpus/--memory, Kubernetes limits, systemd slices) sets them through cgroup v2 or
// v1. The CPU affinity and /proc/meminfo do not show these: a worker count taken from them alone
// can run a container out of memory.
#pragma once

#include <cstddef>
#include <string>

namespace veil::engine::internal {

struct CgroupLimits {
  int cpu_cores = 0;          // the CPU quota in whole cores (rounded up); 0: no quota
  bool memory_limited = false;
  size_t memory_left = 0;     // with a limit: what it leaves (limit minus usage but the inactive page
                              // cache, the least over the tree)
};

// Reads the limits of the cgroups named in `proc_self_cgroup` (the format of /proc/self/cgroup)
// under the cgroup file system mounted at `root` (v2 there or at root/unified; v1 at root/cpu and
// root/memory), from the process's own group up to the root: the tightest applies. Files that are
// missing or unreadable mean no limit; so does a group outside this cgroup namespace ("/../..").
CgroupLimits ReadCgroupLimits(const std::string& root = "/sys/fs/cgroup", const std::string& proc_self_cgroup = "/proc/self/cgroup");

}  // namespace veil::engine::internal
