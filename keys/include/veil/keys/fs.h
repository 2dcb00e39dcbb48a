// Durable file operations: every save is a temporary file in the same folder, fsync, rename and
// fsync of the folder, so a crash leaves either the old or the new file, never a mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "veil/status.h"

namespace veil::keys {

// Reads a whole file; DataLoss-free but refuses files larger than `max_bytes` (ResourceExhausted).
StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 256u << 20);

// Opens a regular file for reading (a file descriptor the caller closes) without following a FIFO
// or a device into a blocking open: NotFound, InvalidArgument when it is not a regular file.
StatusOr<int> OpenRegularFile(const std::string& path);

// SHA-256 of a file of any size, read in pieces (videos).
StatusOr<std::string> Sha256File(const std::string& path);
// Copies a regular file to `to` (created with O_EXCL and `mode`; removed again on failure) and
// returns the SHA-256 of the bytes copied: what is hashed is exactly what the copy holds.
StatusOr<std::string> CopyFileSha256(const std::string& from, const std::string& to, unsigned mode = 0600);

// Writes `bytes` to `path` atomically and durably. With overwrite=false an existing file is
// never replaced (AlreadyExists).
Status WriteFileAtomic(const std::string& path, const std::string& bytes, bool overwrite, unsigned mode = 0600);

// True when `path` is a regular file of exactly `size` bytes with this SHA-256: what an earlier,
// interrupted run of the same deterministic job left behind.
bool FileHolds(const std::string& path, const std::string& sha256, uint64_t size);

// WriteFileAtomic(overwrite=false), except that a file already holding exactly `bytes` counts as
// written (*created = false; true when this call made it): a deterministic job killed after this
// step and run again goes on instead of stopping at its own leftovers.
Status WriteNewFileOrSame(const std::string& path, const std::string& bytes, unsigned mode = 0600,
                          bool* created = nullptr);

// A file written piece by piece under a temporary name in the folder of `near`; it appears under
// its final name only on Commit (fsync, link or rename, fsync of the folder). An uncommitted
// temporary file is removed by the destructor: a failed or killed job leaves no half-written file
// under a real name.
class PendingFile {
 public:
  static StatusOr<PendingFile> Create(const std::string& near, unsigned mode = 0600);
  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&& other) noexcept;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile();

  Status Append(std::string_view bytes);
  // Run as root, gives the file the owner and group of the file open as `like_fd` (fchown, before
  // Commit gives it its name): a file root writes into another user's folder stays theirs.
  // Nothing for other users, who cannot give files away.
  Status SetOwnerLike(int like_fd);
  // `path` must lie in the same folder as `near`. overwrite=false never replaces a file
  // (AlreadyExists); overwrite=true replaces one atomically.
  Status Commit(const std::string& path, bool overwrite);
  const std::string& temp_path() const { return tmp_; }
  // True once the file stands under its final name (Commit may still fail after that, when the
  // folder's fsync does).
  bool committed() const { return committed_; }

 private:
  PendingFile(std::string tmp, int fd) : tmp_(std::move(tmp)), fd_(fd) {}
  void Discard();  // closes and, unless committed, removes the temporary file
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Whether `err`, from link(), says the file system has no hard links (FAT and exFAT give EPERM;
// some file systems EOPNOTSUPP or ENOSYS): callers then fall back, other errors are errors.
bool HardLinksMissing(int err);

// Gives the file `from` the name `to` on the same file system, never replacing a file there
// (AlreadyExists): a hard link, then `from` removed; on a file system without hard links (FAT,
// exFAT) an atomic rename that refuses an existing target. Not durable until FsyncDir.
Status MoveNoReplace(const std::string& from, const std::string& to);

// Creates a new folder `prefix` + 6 random characters, mode 0700, in the folder that holds `near`
// (".", when `near` names none) and returns its path: a place for files that nobody else may open
// while they are written (a program that creates them with the default mode, FFmpeg for one).
StatusOr<std::string> MakePrivateFolderBeside(const std::string& near, const std::string& prefix);

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
