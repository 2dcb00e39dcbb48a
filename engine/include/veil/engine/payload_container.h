// Payload containers (format: proto/veil/proto/payload_container.proto): a video's sealed
// originals, written record by record while the frames are anonymized and read back the same way,
// so that neither side holds more than one record in memory.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>

#include "veil/engine/manifest.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::engine {

// The largest record a reader accepts (a sealed face region: PNG of up to ~20 MP).
inline constexpr uint32_t kMaxPayloadRecordBytes = 64u << 20;

struct PayloadRecord {
  uint32_t face_index = 0;
  uint32_t frame = 0;
  std::string sealed;
};

class PayloadContainerWriter {
 public:
  // A container with `container_id` (16 bytes), written to a temporary file beside `near`.
  static StatusOr<PayloadContainerWriter> Create(const std::string& near, const std::string& container_id,
                                                 unsigned mode = 0600);
  Status Append(const PayloadRecord& record);
  // What the manifest records about the container written so far.
  PayloadContainerRef Ref() const;
  // Makes the container appear under `path` (same folder as `near`); see keys::PendingFile.
  Status Commit(const std::string& path, bool overwrite) { return file_.Commit(path, overwrite); }

 private:
  PayloadContainerWriter(keys::PendingFile file, std::string id) : file_(std::move(file)), id_(std::move(id)) {}
  Status Put(const std::string& bytes);
  Status PutFramed(const std::string& message);
  keys::PendingFile file_;
  keys::Sha256Hasher hash_;
  std::string id_;
  uint32_t records_ = 0;
};

class PayloadContainerReader {
 public:
  // Checks the magic and version first: DataLoss for anything that is not a payload container,
  // Unsupported for another format version.
  static StatusOr<PayloadContainerReader> Open(std::unique_ptr<std::istream> in);
  static StatusOr<PayloadContainerReader> OpenFile(const std::string& path);
  // The next record; nullopt at a clean end of the file; DataLoss when truncated or malformed.
  StatusOr<std::optional<PayloadRecord>> Next();
  // What has been read so far, as a manifest records it (after the last record: the whole file).
  PayloadContainerRef Ref() const;

 private:
  explicit PayloadContainerReader(std::unique_ptr<std::istream> in) : in_(std::move(in)) {}
  // Reads exactly n bytes (in pieces: a lying length allocates nothing up front); false at EOF.
  bool Read(size_t n, std::string* out);
  std::unique_ptr<std::istream> in_;
  keys::Sha256Hasher hash_;
  std::string id_;
  uint32_t records_ = 0;
};

}  // namespace veil::engine
