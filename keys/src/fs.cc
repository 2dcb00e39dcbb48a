#include "veil/keys/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

#include <sodium.h>

#include "veil/keys/secret.h"

namespace veil::keys {
namespace {

std::string ErrnoText(int e) { return std::strerror(e); }

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(std::string("write failed: ") + ErrnoText(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string ParentDir(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

}  // namespace

StatusOr<int> OpenRegularFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return NotFoundError("no such file: " + path);
    return IoError("cannot open " + path + ": " + ErrnoText(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("not a regular file: " + path);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

namespace {

// Reads `fd` to its end in pieces: each piece goes to `hash` and, when out_fd >= 0, to out_fd.
Status HashStream(int fd, const std::string& path, crypto_hash_sha256_state* hash, int out_fd, const std::string& out) {
  std::string buf(1u << 20, '\0');
  for (;;) {
    ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read " + path + ": " + ErrnoText(errno));
    }
    if (r == 0) return Status::Ok();
    crypto_hash_sha256_update(hash, reinterpret_cast<const unsigned char*>(buf.data()), static_cast<size_t>(r));
    for (ssize_t done = 0; out_fd >= 0 && done < r;) {
      ssize_t w = ::write(out_fd, buf.data() + done, static_cast<size_t>(r - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return IoError("cannot write " + out + ": " + ErrnoText(errno));
      }
      done += w;
    }
  }
}

}  // namespace

StatusOr<std::string> Sha256File(const std::string& path) {
  if (sodium_init() < 0) return InternalError("libsodium failed to initialize");
  VEIL_ASSIGN_OR_RETURN(int fd, OpenRegularFile(path));
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  Status st = HashStream(fd, path, &state, -1, "");
  ::close(fd);
  VEIL_RETURN_IF_ERROR(st);
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&state, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

StatusOr<std::string> CopyFileSha256(const std::string& from, const std::string& to, unsigned mode) {
  if (sodium_init() < 0) return InternalError("libsodium failed to initialize");
  VEIL_ASSIGN_OR_RETURN(int fd, OpenRegularFile(from));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0) {
    int e = errno;
    ::close(fd);
    return e == EEXIST ? AlreadyExistsError(to + " exists") : IoError("cannot create " + to + ": " + ErrnoText(e));
  }
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  Status st = HashStream(fd, from, &state, out, to);
  ::close(fd);
  if (::close(out) != 0 && st.ok()) st = IoError("cannot write " + to + ": " + ErrnoText(errno));
  if (!st.ok()) {
    ::unlink(to.c_str());
    return st;
  }
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&state, reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  VEIL_ASSIGN_OR_RETURN(int fd, OpenRegularFile(path));
  struct stat st {};
  ::fstat(fd, &st);
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return ResourceExhaustedError(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      WipeString(&out);  // a key file or passphrase read in part is not left in freed memory
      return IoError("cannot read " + path + ": " + ErrnoText(e));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  ::close(fd);
  return out;
}

StatusOr<std::string> MakePrivateFolderBeside(const std::string& near, const std::string& prefix) {
  const std::filesystem::path parent = std::filesystem::path(near).parent_path();
  std::string tmpl = ((parent.empty() ? std::filesystem::path(".") : parent) / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return IoError("cannot create a private folder next to " + near + ": " + ErrnoText(errno));
  return tmpl;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open folder " + dir + ": " + ErrnoText(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) return IoError("cannot fsync folder " + dir + ": " + ErrnoText(e));
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

StatusOr<PendingFile> PendingFile::Create(const std::string& near, unsigned mode) {
  std::random_device rd;
  std::string tmp = near + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot create " + tmp + ": " + ErrnoText(errno));
  return PendingFile(std::move(tmp), fd);
}

PendingFile::PendingFile(PendingFile&& other) noexcept
    : tmp_(std::move(other.tmp_)), fd_(std::exchange(other.fd_, -1)), committed_(std::exchange(other.committed_, true)) {}

PendingFile& PendingFile::operator=(PendingFile&& other) noexcept {
  if (this != &other) {
    Discard();
    tmp_ = std::move(other.tmp_);
    fd_ = std::exchange(other.fd_, -1);
    committed_ = std::exchange(other.committed_, true);
  }
  return *this;
}

PendingFile::~PendingFile() { Discard(); }

void PendingFile::Discard() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (!committed_) ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left to remove
}

Status PendingFile::Append(std::string_view bytes) {
  if (fd_ < 0) return FailedPreconditionError("the file " + tmp_ + " is closed");
  Status st = WriteAll(fd_, bytes.data(), bytes.size());
  return st.ok() ? st : st.WithContext(tmp_);
}

Status PendingFile::SetOwnerLike(int like_fd) {
  if (fd_ < 0) return FailedPreconditionError("the file " + tmp_ + " is closed");
  if (::geteuid() != 0) return Status::Ok();
  struct stat like {}, mine {};
  if (::fstat(like_fd, &like) != 0 || ::fstat(fd_, &mine) != 0) return IoError("cannot stat " + tmp_ + ": " + ErrnoText(errno));
  if (like.st_uid == mine.st_uid && like.st_gid == mine.st_gid) return Status::Ok();
  if (::fchown(fd_, like.st_uid, like.st_gid) != 0) return IoError("cannot set the owner of " + tmp_ + ": " + ErrnoText(errno));
  return Status::Ok();
}

Status PendingFile::Commit(const std::string& path, bool overwrite) {
  if (fd_ < 0) return FailedPreconditionError("the file " + tmp_ + " is closed");
  Status st = ::fsync(fd_) == 0 ? Status::Ok() : IoError("fsync failed for " + tmp_ + ": " + ErrnoText(errno));
  if (::close(fd_) != 0 && st.ok()) st = IoError("close failed for " + tmp_ + ": " + ErrnoText(errno));
  fd_ = -1;
  VEIL_RETURN_IF_ERROR(st);
  if (overwrite) {
    if (::rename(tmp_.c_str(), path.c_str()) != 0) return IoError("cannot rename onto " + path + ": " + ErrnoText(errno));
  } else {
    VEIL_RETURN_IF_ERROR(MoveNoReplace(tmp_, path));
  }
  committed_ = true;
  return FsyncDir(ParentDir(path));
}

bool HardLinksMissing(int err) { return err == EPERM || err == EOPNOTSUPP || err == ENOSYS; }

Status MoveNoReplace(const std::string& from, const std::string& to) {
  // link() fails if the target appeared meanwhile: never replaces a file.
  if (::link(from.c_str(), to.c_str()) == 0) {
    ::unlink(from.c_str());
    return Status::Ok();
  }
  int e = errno;
  if (HardLinksMissing(e)) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return Status::Ok();
    e = errno;
  }
  return e == EEXIST ? AlreadyExistsError(to + " exists; not overwriting it") : IoError("cannot create " + to + ": " + ErrnoText(e));
}

Status WriteFileAtomic(const std::string& path, const std::string& bytes, bool overwrite, unsigned mode) {
  if (!overwrite && PathExists(path)) return AlreadyExistsError(path + " exists; not overwriting it");
  VEIL_ASSIGN_OR_RETURN(PendingFile file, PendingFile::Create(path, mode));
  VEIL_RETURN_IF_ERROR(file.Append(bytes));
  return file.Commit(path, overwrite);
}

bool FileHolds(const std::string& path, const std::string& sha256, uint64_t size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != size) return false;
  auto digest = Sha256File(path);
  return digest.ok() && *digest == sha256;
}

Status WriteNewFileOrSame(const std::string& path, const std::string& bytes, unsigned mode, bool* created) {
  if (created) *created = false;
  if (FileHolds(path, Sha256(bytes), bytes.size())) return Status::Ok();
  if (PathExists(path)) {
    return AlreadyExistsError(path + " exists with other contents (another job's, or made with other models or keys); not overwriting it");
  }
  Status written = WriteFileAtomic(path, bytes, /*overwrite=*/false, mode);
  // Another writer of the same bytes (a duplicate photo in a parallel batch) may have got there
  // between the check and the link: its file is this one.
  if (written.code() == StatusCode::kAlreadyExists && FileHolds(path, Sha256(bytes), bytes.size())) return Status::Ok();
  VEIL_RETURN_IF_ERROR(written);
  if (created) *created = true;
  return Status::Ok();
}

StatusOr<FileLock> FileLock::Acquire(const std::string& path, Mode mode, int timeout_ms) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot open lock file " + path + ": " + ErrnoText(errno));
  int op = (mode == Mode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (::flock(fd, op) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK && std::chrono::steady_clock::now() < deadline) {
      ::usleep(2000);
      continue;
    }
    if (e == EINTR) continue;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return IoError(path + " is locked by another user of the key store; gave up after " +
                     std::to_string(timeout_ms / 1000) + " s");
    }
    return IoError("cannot lock " + path + ": " + ErrnoText(e));
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace veil::keys
