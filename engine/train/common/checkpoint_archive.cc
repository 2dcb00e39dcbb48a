#include "common/checkpoint_archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "veil/keys/fs.h"

namespace veil::train {

void WriteModule(torch::serialize::OutputArchive& ar, const std::string& key, const torch::nn::Module& m) {
  torch::serialize::OutputArchive sub;
  m.save(sub);
  ar.write(key, sub);
}

void WriteOptimizer(torch::serialize::OutputArchive& ar, const std::string& key, const torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive sub;
  opt.save(sub);
  ar.write(key, sub);
}

void ReadModule(torch::serialize::InputArchive& ar, const std::string& key, torch::nn::Module& m) {
  torch::serialize::InputArchive sub;
  ar.read(key, sub);
  m.load(sub);
}

void ReadOptimizer(torch::serialize::InputArchive& ar, const std::string& key, torch::optim::Optimizer& opt) {
  torch::serialize::InputArchive sub;
  ar.read(key, sub);
  opt.load(sub);
}

Status SaveArchiveDurably(torch::serialize::OutputArchive& ar, const std::string& path, const std::string& what) {
  const std::string tmp = path + ".tmp";
  try {
    ar.save_to(tmp);
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    const std::string why = e.what();
    return IoError("cannot write the " + what + " " + tmp + ": " + why.substr(0, why.find('\n')));  // no backtrace
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) {
    std::remove(tmp.c_str());
    return IoError("cannot fsync the " + what + " " + tmp + ": " + std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return IoError("cannot rename the " + what + " to " + path + ": " + ec.message());
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return keys::FsyncDir(dir.empty() ? "." : dir.string());
}

}  // namespace veil::train
