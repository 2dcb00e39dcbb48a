// Process-wide settings of the perception engine: where the models live and how many threads
// LibTorch uses. Nothing here downloads anything; the models are fetched once by
// tools/fetch_face_api.sh.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace veil::engine {

// The folder with the face-api model files (NAME-weights_manifest.json + shards): $VEIL_FACE_API_DIR
// when set, else the folder configured at build time (<repo>/.cache/face-api/package/model).
std::string DefaultModelsDir();

// Resolves an empty `models_dir` option to DefaultModelsDir().
std::string ResolveModelsDir(const std::string& models_dir);

// Sets LibTorch's intra-op threads to the number of cores ($VEIL_THREADS when set to 1..1024), but
// at least 2 (single-threaded, LibTorch picks other kernels and the output bytes would depend on the
// machine's core count), once per process (LibTorch starts with one thread on this platform), fixes glibc's mmap threshold
// at 32 MiB (unless $MALLOC_MMAP_THRESHOLD_ is set: its dynamic adjustment let long videos grow to
// GBs) and its trim threshold at 512 MiB (unless $MALLOC_TRIM_THRESHOLD_ is set: left at 128 KiB,
// freed tensor pages went back to the kernel and were faulted in again, 6x slower), and
// quiets FFmpeg's own messages on stderr unless $OPENCV_FFMPEG_LOGLEVEL is set. Called by every
// engine factory and before videos are opened; calling it again is harmless.
void InitRuntimeOnce();

// Number of threads LibTorch uses after InitRuntimeOnce().
int RuntimeThreads();

// The number of cores this process may run on: its CPU affinity, and no more than its cgroups' CPU
// quota (a container's --cpus, rounded up); at least 1.
int UsableCores();

// The memory this process can still take, in bytes: MemAvailable from /proc/meminfo, and no more
// than its cgroups' memory limit leaves (a container's --memory; 0 at or over the limit); nullopt
// when neither is known.
std::optional<size_t> AvailableMemoryBytes();

// For `workers` pipelines running at once (veil anonymize --jobs): LibTorch's threads become
// UsableCores() / workers, at least 2, unless $VEIL_THREADS is set. Call before the workers start.
void ShareRuntimeThreads(int workers);

}  // namespace veil::engine
