#include "data/utk_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace veil::train {

struct UtkDataset::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr && addr != MAP_FAILED) munmap(addr, size);
  }
};

namespace {

bool ParseInt(const std::string& s, int* out) {
  auto v = ParseInteger(s, "field", -1, 1'000'000'000);
  if (!v.ok()) return false;
  *out = static_cast<int>(*v);
  return true;
}

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == '\t') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

}  // namespace

std::string DefaultTrainDir() {
  if (const char* d = std::getenv("VEIL_TRAIN_DIR"); d != nullptr && *d != '\0') return d;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.cache/veil/train";
}

std::string DefaultUtkDir() { return DefaultTrainDir() + "/" + kUtkSetName; }

UtkDataset::UtkDataset(UtkDataset&&) noexcept = default;
UtkDataset& UtkDataset::operator=(UtkDataset&&) noexcept = default;
UtkDataset::~UtkDataset() = default;

StatusOr<UtkDataset> UtkDataset::Open(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFoundError("no prepared data set at " + dir + " (run veil-train-prep)");
  std::ifstream done(dir + "/DONE");
  if (!done) return FailedPreconditionError("data set " + dir + " is incomplete (no DONE file; is veil-train-prep running?)");
  long long n = -1;
  done >> n;
  if (!done || n <= 0) return DataLossError("malformed DONE file in " + dir);

  UtkDataset ds;
  ds.dir_ = dir;
  std::ifstream index(dir + "/index.tsv");
  if (!index) return NotFoundError("missing " + dir + "/index.tsv");
  std::string line;
  if (!std::getline(index, line) || line != "idx\tfile\tsplit\tage\tgender\trace")
    return DataLossError("index.tsv: unexpected header");
  while (std::getline(index, line)) {
    if (line.empty()) continue;
    const auto f = SplitTabs(line);
    int idx = 0;
    UtkRecord r;
    if (f.size() != 6 || !ParseInt(f[0], &idx) || idx != static_cast<int>(ds.records_.size()) ||
        !ParseInt(f[3], &r.age) || !ParseInt(f[4], &r.gender) || !ParseInt(f[5], &r.race))
      return DataLossError("index.tsv: malformed line " + std::to_string(ds.records_.size() + 2));
    r.file = f[1];
    if (f[2] == "train") {
      r.split = Split::kTrain;
    } else if (f[2] == "holdout") {
      r.split = Split::kHoldout;
    } else {
      return DataLossError("index.tsv: bad split on line " + std::to_string(ds.records_.size() + 2));
    }
    ds.records_.push_back(std::move(r));
  }
  if (static_cast<long long>(ds.records_.size()) != n)
    return DataLossError("index.tsv has " + std::to_string(ds.records_.size()) + " rows, DONE says " + std::to_string(n));

  auto map = [&](const std::string& name, size_t row_bytes, bool optional,
                 const void** out) -> Status {
    const std::string path = dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (optional && errno == ENOENT) return Status::Ok();
      return NotFoundError("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      return IoError("cannot stat " + path);
    }
    const size_t expected = row_bytes * static_cast<size_t>(n);
    if (static_cast<size_t>(st.st_size) != expected) {
      ::close(fd);
      return DataLossError(path + " has " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(expected));
    }
    auto m = std::make_unique<Mapping>();
    m->size = expected;
    m->addr = mmap(nullptr, expected, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (m->addr == MAP_FAILED) return IoError("cannot map " + path + ": " + std::strerror(errno));
    *out = m->addr;
    ds.maps_.push_back(std::move(m));
    return Status::Ok();
  };
  const void* p = nullptr;
  VEIL_RETURN_IF_ERROR(map("crops128.u8", size_t{kUtkCropSize} * kUtkCropSize * 3, false, &p));
  ds.crops_ = static_cast<const uint8_t*>(p);
  VEIL_RETURN_IF_ERROR(map("desc.f32", sizeof(float) * kUtkDescriptorDim, false, &p));
  ds.desc_ = static_cast<const float*>(p);
  p = nullptr;
  VEIL_RETURN_IF_ERROR(map("landmarks.f32", sizeof(float) * kUtkLandmarks * 2, true, &p));
  ds.landmarks_ = static_cast<const float*>(p);
  p = nullptr;
  VEIL_RETURN_IF_ERROR(map("desc_flip.f32", sizeof(float) * kUtkDescriptorDim, true, &p));
  ds.flip_ = static_cast<const float*>(p);
  // The pseudonym table holds K keys' rows per face, K from its size.
  const size_t per_key = sizeof(float) * kUtkDescriptorDim * static_cast<size_t>(n);
  std::error_code size_ec;
  const uintmax_t bytes = fs::file_size(dir + "/pseudonyms.f32", size_ec);
  if (size_ec != std::errc::no_such_file_or_directory) {
    if (size_ec || bytes % per_key != 0 || bytes / per_key < 1 || bytes / per_key > kUtkPseudonymKeys) {
      return DataLossError(dir + "/pseudonyms.f32 has " + (size_ec ? std::string("unknown") : std::to_string(bytes)) +
                           " bytes, not 1 to " + std::to_string(kUtkPseudonymKeys) + " times " + std::to_string(per_key));
    }
    const int keys = static_cast<int>(bytes / per_key);
    p = nullptr;
    VEIL_RETURN_IF_ERROR(map("pseudonyms.f32", sizeof(float) * kUtkDescriptorDim * static_cast<size_t>(keys), false, &p));
    ds.pseudonyms_ = static_cast<const float*>(p);
    ds.pseudonym_keys_ = keys;
  }
  return ds;
}

std::vector<size_t> UtkDataset::Indices(Split s) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < records_.size(); ++i)
    if (records_[i].split == s) out.push_back(i);
  return out;
}

std::vector<size_t> UtkDataset::TrainIndices(size_t* dropped) const {
  const std::vector<size_t> train = Indices(Split::kTrain), holdout = Indices(Split::kHoldout);
  const float limit = kSamePhotoDistance * kSamePhotoDistance;
  std::vector<size_t> out;
  for (size_t i : train) {
    const float* a = descriptor(i);
    bool twin = false;
    for (size_t j : holdout) {
      const float* b = descriptor(j);
      float s = 0;
      for (int k = 0; k < kUtkDescriptorDim && s < limit; ++k) s += (a[k] - b[k]) * (a[k] - b[k]);
      if (s < limit) {
        twin = true;
        break;
      }
    }
    if (!twin) out.push_back(i);
  }
  if (dropped) *dropped = train.size() - out.size();
  return out;
}

const uint8_t* UtkDataset::crop_data(size_t i) const {
  (void)records_.at(i);
  return crops_ + i * size_t{kUtkCropSize} * kUtkCropSize * 3;
}

const float* UtkDataset::descriptor(size_t i) const {
  (void)records_.at(i);
  return desc_ + i * kUtkDescriptorDim;
}

const float* UtkDataset::descriptor_flip(size_t i) const {
  (void)records_.at(i);
  return flip_ == nullptr ? nullptr : flip_ + i * kUtkDescriptorDim;
}

const float* UtkDataset::pseudonym(size_t i, int key) const {
  (void)records_.at(i);
  if (pseudonyms_ == nullptr || key < 0 || key >= pseudonym_keys_) return nullptr;
  return pseudonyms_ + (i * static_cast<size_t>(pseudonym_keys_) + static_cast<size_t>(key)) * kUtkDescriptorDim;
}

const float* UtkDataset::landmarks(size_t i) const {
  (void)records_.at(i);
  return landmarks_ == nullptr ? nullptr : landmarks_ + i * kUtkLandmarks * 2;
}

}  // namespace veil::train
