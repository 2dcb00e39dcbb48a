// Appends signed, chained records to the audit log (internal; used by KeyStore under its lock).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "veil/keys/audit_log.h"
#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::keys::internal {

// A record's size limit, and those of its text fields: longer text (a forged request can name
// 64 approvers of 1,024 characters each) is cut, never a reason to write no record. Grants name
// every target digest (up to 4,096 x 32 bytes), so records are larger than their text allows.
inline constexpr size_t kMaxAuditRecord = 256 * 1024;
inline constexpr size_t kMaxAuditName = 256, kMaxAuditReason = 8 * 1024;
static_assert(kMaxAuditName >= 64, "a cut text keeps room for its note");

class AuditWriter {
 public:
  // Creates a new log holding only its header. AlreadyExists if the file exists.
  static Status Create(const std::string& path, const std::string& store_id, const std::string& public_key);

  // Opens the log for appending after verifying it completely. An unfinished record at the end
  // (a crash during an append) is moved aside to "<path>.torn-<time>" and a kLogRecovered record
  // says so; anything else that fails verification refuses the open (fail closed), and so does a
  // log that does not extend its head file (HeadPath), or a head file that is damaged (DataLoss).
  // A missing one is left to FinishOpen, once the caller's own checks pass. `recent`, when
  // given, receives the verified records from sequence `recent_from` on (not the one Open adds).
  static StatusOr<std::unique_ptr<AuditWriter>> Open(const std::string& path, const std::string& store_id,
                                                     const SecretBytes& signing_key, uint64_t recent_from = 0,
                                                     std::vector<AuditEntry>* recent = nullptr);
  ~AuditWriter();

  // Appends one record and makes it durable (fdatasync) before returning, then writes the head
  // file. On failure the file is cut back to its previous length and the caller must not carry out
  // what the record describes.
  Status Append(const AuditEvent& event);

  // "<log>.head": a signed checkpoint of the log as its last append left it, replaced atomically
  // after every append, so that records cut from the log's end show on the next open even when no
  // checkpoint was exported since (only a head file put back from before them hides that).
  static std::string HeadPath(const std::string& log_path) { return log_path + ".head"; }
  // Called once the caller's own checks accept the log (nothing before it writes to the folder but
  // a torn tail's set-aside): sweeps head files left by a killed append and, when Open found no head
  // file, logs that it was missing (kLogRecovered; not for the log a new store just created,
  // `new_log`) and writes one. Until then no append writes a head. A folder where no head file can
  // be written leaves no record, only `notice` (as does a logged absence); an error only when the
  // record cannot be appended.
  Status FinishOpen(std::string* notice, bool new_log = false);

  // A signed checkpoint of the log as it is now (serialized SignedCheckpoint).
  std::string MakeCheckpoint() const;
  uint64_t record_count() const { return count_; }
  // The records that verified when the log was opened (without the one Open adds for a torn tail).
  uint64_t verified_record_count() const { return verified_; }

 private:
  AuditWriter() = default;
  Status WriteHead() const;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t count_ = 0;
  uint64_t verified_ = 0;
  std::string head_;  // chain value after the last record
  std::string store_id_;
  std::string public_key_;
  const SecretBytes* signing_key_ = nullptr;
  bool head_missing_ = false;  // Open found no head file; FinishOpen deals with it
};

}  // namespace veil::keys::internal
