#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "audit_writer.h"
#include "veil/keys/fs.h"
#include "veil/keys/principal_key.h"
#include "veil/keys/secret.h"
#include "veil/proto/audit.pb.h"

namespace veil::keys {
namespace {

constexpr std::string_view kMagic = "VEILAUDT";
constexpr uint32_t kFormatVersion = 1;
constexpr std::string_view kGenesisDomain = "veil-audit-v1";
constexpr std::string_view kRecordDomain = "veil-audit-record-v1";
constexpr std::string_view kCheckpointDomain = "veil-checkpoint-v1";
constexpr size_t kMaxHeader = 4096;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string Blake2bOf(std::string_view a, std::string_view b) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(a.data()), a.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  std::string out(32, '\0');
  crypto_generichash_final(&st, reinterpret_cast<unsigned char*>(out.data()), out.size());
  return out;
}


AuditEntry ToEntry(const proto::AuditRecord& r, const std::string& hash) {
  AuditEntry e;
  e.sequence = r.sequence();
  e.time_unix_ms = r.time_unix_ms();
  e.event.actor = r.actor();
  e.event.action = static_cast<AuditAction>(r.action());
  e.event.target = r.target();
  for (const auto& d : r.target_digests()) e.event.target_digests.push_back(d);
  e.event.outcome = static_cast<AuditOutcome>(r.outcome());
  e.event.reason = r.reason();
  e.event.keyring = r.key().keyring();
  e.event.key_version = r.key().version();
  e.hash_hex = ToHex(hash);
  return e;
}

// The result of reading a log front to back.
struct Scan {
  proto::AuditLogHeader header;
  std::vector<std::string> chain;  // chain[i] = value before record i; chain.back() = head
  size_t valid_end = 0;            // byte offset after the last good record
  size_t torn_bytes = 0;           // bytes of an unfinished final record
  Status error;                    // first verification failure (other than a torn tail)
};

// Verifies the whole log; `entries`, when given, receives the records from sequence `entries_from` on.
Scan ScanLog(std::string_view bytes, std::string_view expected_pk, std::vector<AuditEntry>* entries,
             uint64_t entries_from = 0) {
  EnsureSodium();
  Scan s;
  if (bytes.size() < kMagic.size() + 4 || bytes.substr(0, kMagic.size()) != kMagic) {
    s.error = DataLossError("not a Veil audit log (bad magic)");
    return s;
  }
  uint32_t hlen = GetU32(bytes.data() + kMagic.size());
  size_t pos = kMagic.size() + 4;
  if (hlen > kMaxHeader || bytes.size() < pos + hlen) {
    s.error = DataLossError("audit log header is truncated or its length is corrupt");
    return s;
  }
  std::string_view hdr = bytes.substr(pos, hlen);
  if (!s.header.ParseFromArray(hdr.data(), static_cast<int>(hdr.size()))) {
    s.error = DataLossError("audit log header does not parse");
    return s;
  }
  if (Status st = CheckFormatVersion("audit log", s.header.format_version(), kFormatVersion); !st.ok()) {
    s.error = st;
    return s;
  }
  const std::string& pk = s.header.log_public_key();
  if (pk.size() != crypto_sign_PUBLICKEYBYTES) {
    s.error = DataLossError("audit log header has no valid public key");
    return s;
  }
  if (!expected_pk.empty() && (expected_pk.size() != pk.size() || sodium_memcmp(expected_pk.data(), pk.data(), pk.size()) != 0)) {
    s.error = UnauthenticatedError("audit log is signed by a different key than expected");
    return s;
  }
  pos += hlen;
  s.chain.push_back(Blake2bOf(kGenesisDomain, hdr));
  s.valid_end = pos;
  uint64_t seq = 0;
  while (pos < bytes.size()) {
    size_t left = bytes.size() - pos;
    if (left < 4) {
      s.torn_bytes = left;
      return s;
    }
    uint32_t len = GetU32(bytes.data() + pos);
    if (len == 0 || len > internal::kMaxAuditRecord) {
      s.error = DataLossError("audit record " + std::to_string(seq) + " has a corrupt length");
      return s;
    }
    if (left < 4 + static_cast<size_t>(len)) {
      s.torn_bytes = left;
      return s;
    }
    std::string_view body = bytes.substr(pos + 4, len);
    proto::SignedAuditRecord signed_record;
    proto::AuditRecord record;
    if (!signed_record.ParseFromArray(body.data(), static_cast<int>(body.size())) ||
        !record.ParseFromString(signed_record.record())) {
      s.error = DataLossError("audit record " + std::to_string(seq) + " does not parse");
      return s;
    }
    if (record.sequence() != seq) {
      s.error = DataLossError("audit record at position " + std::to_string(seq) + " has sequence " +
                              std::to_string(record.sequence()) + " (records deleted or reordered)");
      return s;
    }
    if (record.prev_hash() != s.chain.back()) {
      s.error = DataLossError("audit record " + std::to_string(seq) + " does not link to the previous record");
      return s;
    }
    std::string hash = Blake2bOf(s.chain.back(), signed_record.record());
    if (!VerifySignature(kRecordDomain, hash, signed_record.signature(), pk)) {
      s.error = DataLossError("audit record " + std::to_string(seq) + " has an invalid signature");
      return s;
    }
    if (entries && seq >= entries_from) entries->push_back(ToEntry(record, hash));
    s.chain.push_back(hash);
    pos += 4 + len;
    s.valid_end = pos;
    ++seq;
  }
  return s;
}

}  // namespace

const char* AuditActionName(AuditAction a) {
  switch (a) {
    case AuditAction::kStoreCreated: return "store-created";
    case AuditAction::kKeyringCreated: return "keyring-created";
    case AuditAction::kKeyRotated: return "key-rotated";
    case AuditAction::kKeyDisabled: return "key-disabled";
    case AuditAction::kKeyEnabled: return "key-enabled";
    case AuditAction::kKeyDestroyed: return "key-destroyed";
    case AuditAction::kPrincipalAdded: return "principal-added";
    case AuditAction::kPrincipalRevoked: return "principal-revoked";
    case AuditAction::kRequestCreated: return "request-created";
    case AuditAction::kRequestApproved: return "request-approved";
    case AuditAction::kRestoreAuthorization: return "restore-authorization";
    case AuditAction::kCheckpointExported: return "checkpoint-exported";
    case AuditAction::kLogRecovered: return "log-recovered";
    case AuditAction::kPolicyChanged: return "policy-changed";
    case AuditAction::kKeyUsed: return "key-used";
    case AuditAction::kRestorePerformed: return "restore-performed";
    case AuditAction::kRequestSigned: return "request-signed";
  }
  return "unknown";
}

const char* AuditOutcomeName(AuditOutcome o) {
  switch (o) {
    case AuditOutcome::kSuccess: return "success";
    case AuditOutcome::kGranted: return "granted";
    case AuditOutcome::kDenied: return "denied";
    case AuditOutcome::kFailed: return "failed";
  }
  return "unknown";
}

StatusOr<CheckpointInfo> ReadCheckpoint(const std::string& bytes, const std::string& expected_public_key) {
  EnsureSodium();
  proto::SignedCheckpoint sc;
  proto::Checkpoint cp;
  if (bytes.size() > 4096 || !sc.ParseFromString(bytes) || !cp.ParseFromString(sc.checkpoint())) {
    return DataLossError("checkpoint does not parse");
  }
  VEIL_RETURN_IF_ERROR(CheckFormatVersion("audit checkpoint", cp.format_version(), kFormatVersion));
  const std::string& pk = expected_public_key.empty() ? cp.log_public_key() : expected_public_key;
  if (cp.log_public_key() != pk) return UnauthenticatedError("checkpoint names a different log key");
  if (cp.head_hash().size() != 32 || !VerifySignature(kCheckpointDomain, sc.checkpoint(), sc.signature(), pk)) {
    return DataLossError("checkpoint signature does not verify");
  }
  CheckpointInfo info;
  info.store_id_hex = ToHex(cp.store_id());
  info.public_key_hex = ToHex(cp.log_public_key());
  info.record_count = cp.record_count();
  info.head_hash_hex = ToHex(cp.head_hash());
  info.time_unix_ms = cp.time_unix_ms();
  return info;
}

namespace {

// The number of records the signed checkpoint `bytes` covers, once the scanned log is shown to
// extend it (DataLoss otherwise). `what` names the checkpoint in messages.
StatusOr<uint64_t> CheckExtends(const Scan& s, const std::string& bytes, const std::string& what) {
  auto read = ReadCheckpoint(bytes, s.header.log_public_key());
  if (!read.ok()) return read.status().WithContext(what);
  const CheckpointInfo& cp = *read;
  if (cp.store_id_hex != ToHex(s.header.store_id())) return DataLossError(what + " belongs to another key store");
  const uint64_t records = s.chain.size() - 1;
  if (cp.record_count > records) {
    return DataLossError("audit log has " + std::to_string(records) + " records but " + what + " saw " +
                         std::to_string(cp.record_count) + ": records were removed (the log was cut short)");
  }
  if (ToHex(s.chain[cp.record_count]) != cp.head_hash_hex) {
    return DataLossError("audit log does not extend " + what + ": records before " + std::to_string(cp.record_count) +
                         " were rewritten");
  }
  return cp.record_count;
}

// CheckExtends for the store's own head file: one signed by another log key is tampering with the
// store's folder (DataLoss), not a checkpoint that names another log.
StatusOr<uint64_t> CheckExtendsHead(const Scan& s, const std::string& bytes, const std::string& what) {
  auto covered = CheckExtends(s, bytes, what);
  const StatusCode code = covered.status().code();
  if (code == StatusCode::kUnauthenticated || code == StatusCode::kUnsupported) return DataLossError(covered.status().message());
  return covered;
}

}  // namespace

StatusOr<std::string> ReadAuditHeadFile(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string();
    return IoError("audit head file " + path + " cannot be read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return DataLossError("audit head file " + path + " is not a regular file");
  if (st.st_size == 0 || st.st_size > 4096) {
    return DataLossError("audit head file " + path + " is damaged (" + std::to_string(st.st_size) + " bytes)");
  }
  auto bytes = ReadFile(path, 4096);
  if (!bytes.ok()) return IoError("audit head file " + path + " cannot be read: " + bytes.status().message());
  if (bytes->empty()) return DataLossError("audit head file " + path + " is damaged (0 bytes)");
  return bytes;
}

StatusOr<AuditLogSummary> VerifyAuditLog(const std::string& path, const AuditVerifyOptions& options,
                                         std::vector<AuditEntry>* entries) {
  VEIL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, 1u << 30));
  return VerifyAuditLogBytes(bytes, options, entries);
}

StatusOr<AuditLogSummary> VerifyAuditLogBytes(std::string_view bytes, const AuditVerifyOptions& options,
                                              std::vector<AuditEntry>* entries) {
  Scan s = ScanLog(bytes, options.expected_public_key, entries);
  if (!s.error.ok()) return s.error;
  if (s.torn_bytes) {
    return DataLossError("audit log ends in an unfinished record (" + std::to_string(s.torn_bytes) +
                         " bytes): an append was interrupted; the next change to the key store sets it aside");
  }
  AuditLogSummary sum;
  sum.store_id_hex = ToHex(s.header.store_id());
  sum.public_key_hex = ToHex(s.header.log_public_key());
  sum.record_count = s.chain.size() - 1;
  sum.head_hash_hex = ToHex(s.chain.back());
  if (!options.checkpoint.empty()) {
    VEIL_ASSIGN_OR_RETURN(sum.checkpoint_count, CheckExtends(s, options.checkpoint, "the checkpoint"));
  }
  if (!options.head.empty()) {
    VEIL_ASSIGN_OR_RETURN(sum.head_count, CheckExtendsHead(s, options.head, "its head file"));
  }
  return sum;
}

namespace internal {

Status AuditWriter::Create(const std::string& path, const std::string& store_id, const std::string& public_key) {
  proto::AuditLogHeader h;
  h.set_format_version(kFormatVersion);
  h.mutable_producer()->set_name("veil");
  h.mutable_producer()->set_version(VEIL_VERSION);
  h.set_store_id(store_id);
  h.set_log_public_key(public_key);
  h.set_created_unix(NowMs() / 1000);
  std::string hdr = h.SerializeAsString();
  std::string out(kMagic);
  PutU32(&out, static_cast<uint32_t>(hdr.size()));
  out += hdr;
  return WriteFileAtomic(path, out, /*overwrite=*/false);
}

StatusOr<std::unique_ptr<AuditWriter>> AuditWriter::Open(const std::string& path, const std::string& store_id,
                                                         const SecretBytes& signing_key, uint64_t recent_from,
                                                         std::vector<AuditEntry>* recent) {
  VEIL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, 1u << 30));
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(pk.data()), signing_key.data(SecretAccess::Get()));
  Scan s = ScanLog(bytes, pk, recent, recent_from);
  if (!s.error.ok()) return s.error.WithContext("audit log " + path + " failed verification; refusing to append");
  if (s.header.store_id() != store_id) return DataLossError("audit log " + path + " belongs to another key store");

  // The head file: the signed checkpoint written after every append. The log must extend it (a log
  // cut back after its last append shows here); a missing one is put on record by FinishOpen.
  const std::string head_path = HeadPath(path);
  const std::string head_name = std::filesystem::path(head_path).filename().string();
  const std::string way_out = " (a file-level backup put back? put its " + head_name + " back with its audit log; or move " +
                              head_name + " aside, keeping it as evidence: its absence is then logged)";
  auto head_bytes = ReadAuditHeadFile(head_path);
  if (!head_bytes.ok()) return Status(head_bytes.status().code(), head_bytes.status().message() + way_out);
  if (!head_bytes->empty()) {
    auto covered = CheckExtendsHead(s, *head_bytes, "its head file (" + head_name + ")");
    if (!covered.ok()) {
      return Status(covered.status().code(), "audit log " + path + ": " + covered.status().message() + "; refusing to append" + way_out);
    }
  }

  std::unique_ptr<AuditWriter> w(new AuditWriter());
  w->head_missing_ = head_bytes->empty();  // set first: no append writes a head until FinishOpen
  w->path_ = path;
  w->store_id_ = store_id;
  w->public_key_ = pk;
  w->signing_key_ = &signing_key;
  w->fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (w->fd_ < 0) return IoError("cannot open audit log " + path + " for writing: " + std::strerror(errno));
  w->count_ = s.chain.size() - 1;
  w->verified_ = w->count_;
  w->head_ = s.chain.back();
  w->size_ = s.valid_end;
  if (s.torn_bytes) {
    std::string aside = path + ".torn-" + std::to_string(NowMs());
    std::string torn = bytes.substr(s.valid_end);
    VEIL_RETURN_IF_ERROR(WriteFileAtomic(aside, torn, false));
    if (::ftruncate(w->fd_, static_cast<off_t>(s.valid_end)) != 0 || ::fdatasync(w->fd_) != 0) {
      return IoError("cannot cut the unfinished record off the audit log: " + std::string(std::strerror(errno)));
    }
    AuditEvent e;
    e.actor = "veil";
    e.action = AuditAction::kLogRecovered;
    e.target = aside;
    e.target_digests.push_back(Sha256(torn));
    e.outcome = AuditOutcome::kSuccess;
    e.reason = "set aside " + std::to_string(s.torn_bytes) + " bytes of an unfinished append";
    VEIL_RETURN_IF_ERROR(w->Append(e));
  }
  return w;
}

AuditWriter::~AuditWriter() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// The length of the valid UTF-8 character at text[i], or 0 when there is none.
size_t Utf8CharLength(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // No overlong forms, surrogates or code points past U+10FFFF.
  if (n == 2 && c < 0xc2) return 0;
  if (n == 3 && ((c == 0xe0 && byte(i + 1) < 0xa0) || (c == 0xed && byte(i + 1) >= 0xa0))) return 0;
  if (n == 4 && (c > 0xf4 || (c == 0xf0 && byte(i + 1) < 0x90) || (c == 0xf4 && byte(i + 1) >= 0x90))) return 0;
  return n;
}

// `text` as a record holds it: valid UTF-8 (a protobuf string must be, or the log would not parse
// again), each invalid byte and control sequence (DisplayControlLength) replaced by '?', cut to at
// most `max` bytes at a character boundary with a note of how much was cut.
std::string Bounded(const std::string& text, size_t max) {
  std::string clean;
  clean.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8CharLength(text, i);
    if (n == 0 || DisplayControlLength(text, i) != 0) {
      clean += '?';
      i += std::max<size_t>(1, n);
    } else {
      clean.append(text, i, n);
      i += n;
    }
  }
  if (clean.size() <= max) return clean;
  size_t keep = max - 32;  // room for the note (max >= 64: audit_writer.h)
  while (keep > 0 && (static_cast<unsigned char>(clean[keep]) & 0xc0) == 0x80) --keep;
  return clean.substr(0, keep) + "... [" + std::to_string(clean.size() - keep) + " bytes cut]";
}

}  // namespace

Status AuditWriter::Append(const AuditEvent& event) {
  proto::AuditRecord r;
  r.set_sequence(count_);
  r.set_time_unix_ms(NowMs());
  r.set_actor(Bounded(event.actor, kMaxAuditName));
  r.set_action(static_cast<proto::AuditAction>(event.action));
  r.set_target(Bounded(event.target, kMaxAuditName));
  for (const auto& d : event.target_digests) r.add_target_digests(d);
  r.set_outcome(static_cast<proto::AuditOutcome>(event.outcome));
  r.set_reason(Bounded(event.reason, kMaxAuditReason));
  if (!event.keyring.empty()) {
    r.mutable_key()->set_keyring(Bounded(event.keyring, kMaxAuditName));
    r.mutable_key()->set_version(event.key_version);
  }
  r.set_prev_hash(head_);
  proto::SignedAuditRecord sr;
  sr.set_record(r.SerializeAsString());
  std::string hash = Blake2bOf(head_, sr.record());
  sr.set_signature(SignWithDomain(kRecordDomain, hash, *signing_key_));
  std::string body = sr.SerializeAsString();
  if (body.size() > kMaxAuditRecord) return InvalidArgumentError("audit record too large");
  std::string frame;
  PutU32(&frame, static_cast<uint32_t>(body.size()));
  frame += body;

  if (::lseek(fd_, static_cast<off_t>(size_), SEEK_SET) < 0) return IoError("cannot seek in the audit log");
  const char* p = frame.data();
  size_t n = frame.size();
  Status st;
  while (n > 0) {
    ssize_t wr = ::write(fd_, p, n);
    if (wr < 0) {
      if (errno == EINTR) continue;
      st = IoError(std::string("cannot write the audit log: ") + std::strerror(errno));
      break;
    }
    p += wr;
    n -= static_cast<size_t>(wr);
  }
  if (st.ok() && ::fdatasync(fd_) != 0) st = IoError(std::string("cannot sync the audit log: ") + std::strerror(errno));
  if (!st.ok()) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) ::fdatasync(fd_);
    return st;
  }
  size_ += frame.size();
  head_ = hash;
  ++count_;
  // Best effort: the record is durable already, and a head file left behind (a full disk) only
  // covers fewer records, never more; the next append writes it again. None while a missing head
  // file is still to be logged (FinishOpen): a head written first would hide that it was missing.
  if (!head_missing_) (void)WriteHead();
  return Status::Ok();
}

Status AuditWriter::WriteHead() const {
  const std::string head = HeadPath(path_);
  VEIL_ASSIGN_OR_RETURN(PendingFile file, PendingFile::Create(head, 0600));
  VEIL_RETURN_IF_ERROR(file.Append(MakeCheckpoint()));
  // A head written by another user (root running a restore) gets the log's owner, as the log keeps
  // its own: set on the new file before it takes the name, never through a path.
  VEIL_RETURN_IF_ERROR(file.SetOwnerLike(fd_));
  return file.Commit(head, /*overwrite=*/true);
}

Status AuditWriter::FinishOpen(std::string* notice, bool new_log) {
  const std::string head_path = HeadPath(path_);
  const std::string name = std::filesystem::path(head_path).filename().string();
  // Head files left by an append killed while writing one (under the lock, nobody else writes them).
  std::error_code ec;
  const auto folder = std::filesystem::path(head_path).parent_path();
  for (std::filesystem::directory_iterator it(folder.empty() ? "." : folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    if (it->path().filename().string().rfind(name + ".tmp.", 0) == 0) std::filesystem::remove(it->path(), ignored);
  }
  if (!head_missing_) return Status::Ok();
  if (auto probe = PendingFile::Create(head_path, 0600); !probe.ok()) {
    // Nothing logged (a record per open would say the same again while the folder stays
    // unwritable), and no head is written by appends meanwhile: the next open tries again.
    if (notice) *notice = "the audit log's head file (" + name + ") cannot be written (" + probe.status().message() +
                          "): records cut from the log's end will not show";
    return Status::Ok();
  }
  head_missing_ = false;
  if (new_log) return WriteHead();  // nothing was there to check
  // Removing the head file would let the log's last records be cut unseen: its absence is logged
  // before a head is written again (a crash in between logs it twice, never not at all; a log last
  // written by a Veil from before head files gets this record once).
  AuditEvent e;
  e.actor = "veil";
  e.action = AuditAction::kLogRecovered;
  e.target = name;
  e.outcome = AuditOutcome::kSuccess;
  e.reason = "the audit head file was missing (removed, or the log was last written by a Veil without head files): "
             "whether records after " + std::to_string(verified_) + " were cut before this open cannot be checked";
  VEIL_RETURN_IF_ERROR(Append(e));
  if (notice) *notice = "the audit log's head file (" + name + ") was missing: logged; records cut from the log's end before now cannot be told";
  return Status::Ok();
}

std::string AuditWriter::MakeCheckpoint() const {
  proto::Checkpoint cp;
  cp.set_format_version(kFormatVersion);
  cp.set_store_id(store_id_);
  cp.set_log_public_key(public_key_);
  cp.set_record_count(count_);
  cp.set_head_hash(head_);
  cp.set_time_unix_ms(NowMs());
  proto::SignedCheckpoint sc;
  sc.set_checkpoint(cp.SerializeAsString());
  sc.set_signature(SignWithDomain(kCheckpointDomain, sc.checkpoint(), *signing_key_));
  return sc.SerializeAsString();
}

}  // namespace internal
}  // namespace veil::keys
