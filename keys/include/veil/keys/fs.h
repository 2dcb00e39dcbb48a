// Durable file operations: every save is a temporary file in the same folder, fsync, rename and
// fsync of the folder, so a crash leaves either the old or the new file, never a mix.
#pragma once

#include <cstddef>
#include <string>

#include "veil/status.h"

namespace veil::keys {

// Reads a whole file; DataLoss-free but refuses files larger than `max_bytes` (ResourceExhausted).
StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 256u << 20);

// SHA-256 of a file of any size, read in pieces (videos).
StatusOr<std::string> Sha256File(const std::string& path);
// Copies a regular file to `to` (created with O_EXCL and `mode`; removed again on failure) and
// returns the SHA-256 of the bytes copied: what is hashed is exactly what the copy holds.
StatusOr<std::string> CopyFileSha256(const std::string& from, const std::string& to, unsigned mode = 0600);

// Writes `bytes` to `path` atomically and durably. With overwrite=false an existing file is
// never replaced (AlreadyExists).
Status WriteFileAtomic(const std::string& path, const std::string& bytes, bool overwrite, unsigned mode = 0600);

// fsync() of a folder, making a rename or a new file in it durable.
Status FsyncDir(const std::string& dir);

bool PathExists(const std::string& path);

// An exclusive or shared advisory lock (flock) on a lock file, held for the object's lifetime.
// Serializes processes that change the key store and its audit log.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Waits up to `timeout_ms` for other holders (IoError "locked by another user" after that).
  static StatusOr<FileLock> Acquire(const std::string& path, Mode mode, int timeout_ms = 60000);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace veil::keys
