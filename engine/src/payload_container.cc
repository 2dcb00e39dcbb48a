#include "veil/engine/payload_container.h"

#include <ext/stdio_filebuf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <istream>

#include "byte_order.h"
#include "veil/keys/fs.h"
#include "veil/proto/payload_container.pb.h"

namespace veil::engine {
namespace {

constexpr char kMagic[] = "VEILPAY\n";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxHeaderBytes = 4096;

using internal::PutLittleEndian32;
using internal::ReadLittleEndian32;

}  // namespace

StatusOr<PayloadContainerWriter> PayloadContainerWriter::Create(const std::string& near, const std::string& container_id,
                                                                unsigned mode) {
  if (container_id.size() != 16) return InternalError("a payload container id has 16 bytes");
  VEIL_ASSIGN_OR_RETURN(keys::PendingFile file, keys::PendingFile::Create(near, mode));
  PayloadContainerWriter w(std::move(file), container_id);
  proto::PayloadContainerHeader header;
  header.set_format_version(kVersion);
  header.set_container_id(container_id);
  VEIL_RETURN_IF_ERROR(w.Put(std::string(kMagic, kMagicSize)));
  VEIL_RETURN_IF_ERROR(w.PutFramed(header.SerializeAsString()));
  return w;
}

Status PayloadContainerWriter::Put(const std::string& bytes) {
  hash_.Update(bytes);
  return file_.Append(bytes);
}

Status PayloadContainerWriter::PutFramed(const std::string& message) {
  if (message.size() > kMaxPayloadRecordBytes) return ResourceExhaustedError("a face region is too large to keep");
  std::string framed;
  framed.reserve(4 + message.size());
  PutLittleEndian32(&framed, static_cast<uint32_t>(message.size()));
  framed.append(message);
  return Put(framed);
}

Status PayloadContainerWriter::Append(const PayloadRecord& record) {
  proto::PayloadRecord r;
  r.set_face_index(record.face_index);
  r.set_frame(record.frame);
  r.set_sealed(record.sealed);
  VEIL_RETURN_IF_ERROR(PutFramed(r.SerializeAsString()));
  ++records_;
  return Status::Ok();
}

PayloadContainerRef PayloadContainerWriter::Ref() const { return {id_, hash_.Digest(), hash_.bytes(), records_}; }

StatusOr<PayloadContainerReader> PayloadContainerReader::Open(std::unique_ptr<std::istream> in) {
  PayloadContainerReader r(std::move(in));
  std::string magic, len, header_bytes;
  if (!r.Read(kMagicSize, &magic) || magic != std::string(kMagic, kMagicSize)) {
    return DataLossError("not a Veil payload container");
  }
  if (!r.Read(4, &len)) return DataLossError("the payload container is truncated");
  const uint32_t n = ReadLittleEndian32(len);
  proto::PayloadContainerHeader header;
  if (n > kMaxHeaderBytes || !r.Read(n, &header_bytes) || !header.ParseFromString(header_bytes)) {
    return DataLossError("the payload container's header is malformed");
  }
  VEIL_RETURN_IF_ERROR(CheckFormatVersion("payload container", header.format_version(), kVersion));
  if (header.container_id().size() != 16) return DataLossError("the payload container's id is malformed");
  r.id_ = header.container_id();
  return r;
}

namespace {

// An input stream over a file descriptor it owns (libstdc++'s stdio_filebuf closes it).
class FdStream : public std::istream {
 public:
  explicit FdStream(int fd) : std::istream(nullptr), buf_(fd, std::ios::in | std::ios::binary) { rdbuf(&buf_); }
  bool is_open() const { return buf_.is_open(); }

 private:
  __gnu_cxx::stdio_filebuf<char> buf_;
};

}  // namespace

StatusOr<PayloadContainerReader> PayloadContainerReader::OpenFile(const std::string& path) {
  // Opened once, as a regular file: a name swapped for a FIFO after a check would block forever.
  StatusOr<int> fd = keys::OpenRegularFile(path);
  if (!fd.ok()) {
    return fd.status().code() == StatusCode::kIoError ? fd.status() : NotFoundError("no payload container at " + path);
  }
  auto in = std::make_unique<FdStream>(*fd);
  if (!in->is_open()) {  // the stream did not take the descriptor
    ::close(*fd);
    return IoError("cannot read " + path);
  }
  return Open(std::move(in));
}

bool PayloadContainerReader::Read(size_t n, std::string* out) {
  out->clear();
  constexpr size_t kPiece = 1u << 20;
  while (out->size() < n) {
    const size_t want = std::min(kPiece, n - out->size());
    const size_t at = out->size();
    out->resize(at + want);
    in_->read(out->data() + at, static_cast<std::streamsize>(want));
    const size_t got = static_cast<size_t>(in_->gcount());
    out->resize(at + got);
    if (got != want) break;
  }
  hash_.Update(*out);
  return out->size() == n;
}

StatusOr<std::optional<PayloadRecord>> PayloadContainerReader::Next() {
  std::string len, bytes;
  if (!Read(4, &len)) {
    if (len.empty()) return std::optional<PayloadRecord>();
    return DataLossError("the payload container is truncated");
  }
  const uint32_t n = ReadLittleEndian32(len);
  if (n > kMaxPayloadRecordBytes) return DataLossError("a payload container record is larger than 64 MiB");
  proto::PayloadRecord r;
  if (!Read(n, &bytes)) return DataLossError("the payload container is truncated");
  if (!r.ParseFromString(bytes) || r.sealed().empty()) return DataLossError("a payload container record is malformed");
  ++records_;
  return std::optional<PayloadRecord>(PayloadRecord{r.face_index(), r.frame(), r.sealed()});
}

PayloadContainerRef PayloadContainerReader::Ref() const { return {id_, hash_.Digest(), hash_.bytes(), records_}; }

}  // namespace veil::engine
