// The tamper-evident audit log: append-only records, each chained to the previous one by BLAKE2b
// and signed with the key store's Ed25519 log key. Signed checkpoints (record count + head hash)
// let outside witnesses catch truncation. Records never contain secrets.
//
// Writing happens through KeyStore (it holds the signing key and the lock); this header offers the
// read side: verification, listing and checkpoints, which need only the public key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "veil/status.h"

namespace veil::keys {

// Same numbers as veil.proto.AuditAction.
enum class AuditAction {
  kStoreCreated = 1,
  kKeyringCreated = 2,
  kKeyRotated = 3,
  kKeyDisabled = 4,
  kKeyEnabled = 5,
  kKeyDestroyed = 6,
  kPrincipalAdded = 7,
  kPrincipalRevoked = 8,
  kRequestCreated = 9,
  kRequestApproved = 10,
  kRestoreAuthorization = 11,
  kCheckpointExported = 12,
  kLogRecovered = 13,
  kPolicyChanged = 14,
  kKeyUsed = 15,
  kRestorePerformed = 16,
  kRequestSigned = 17,  // the requester's own signature on a request (never an approval)
};

enum class AuditOutcome { kSuccess = 1, kGranted = 2, kDenied = 3, kFailed = 4 };

const char* AuditActionName(AuditAction action);
const char* AuditOutcomeName(AuditOutcome outcome);

struct AuditEvent {
  std::string actor;                        // principal name, or "local"
  AuditAction action = AuditAction::kStoreCreated;
  std::string target;                       // keyring, principal or request id (readable)
  std::vector<std::string> target_digests;  // raw bytes (request digests, manifest ids, image digests)
  AuditOutcome outcome = AuditOutcome::kSuccess;
  std::string reason;
  std::string keyring;
  uint32_t key_version = 0;
};

struct AuditEntry {
  uint64_t sequence = 0;
  int64_t time_unix_ms = 0;
  AuditEvent event;
  std::string hash_hex;  // chain value after this record
};

struct AuditLogSummary {
  std::string store_id_hex;
  std::string public_key_hex;
  uint64_t record_count = 0;
  std::string head_hash_hex;
  // Set when a checkpoint was checked: the number of records it covered.
  uint64_t checkpoint_count = 0;
  // Set when the head file was checked: the number of records it covered.
  uint64_t head_count = 0;
};

struct AuditVerifyOptions {
  // Raw 32-byte Ed25519 public key that must have signed the log. Empty: trust the log's own
  // header (still detects every change made without the signing key, but not a wholesale
  // replacement; pin the key, or use a checkpoint, for that).
  std::string expected_public_key;
  // A serialized SignedCheckpoint the log must extend. Empty: none.
  std::string checkpoint;
  // The key store's head file (KeyStore::kAuditHeadFile: the signed checkpoint its last append
  // wrote; ReadAuditHeadFile), which the log must extend as well. Empty: none. Read it before the
  // log: an append writes the log first, so a head read earlier never covers more than the log.
  std::string head;
};

// Reads the key store's head file for AuditVerifyOptions::head: "" when nothing is at `path`;
// DataLoss when something is but it is no head file (empty, too large, not a regular file);
// IoError when it cannot be read.
StatusOr<std::string> ReadAuditHeadFile(const std::string& path);

// Reads and verifies the whole log: header, every length, sequence, hash link and signature, and
// that the file ends exactly at a record boundary. DataLoss names the first bad record.
// Fills `entries` (if given) with every record that verified.
StatusOr<AuditLogSummary> VerifyAuditLog(const std::string& path, const AuditVerifyOptions& options,
                                         std::vector<AuditEntry>* entries = nullptr);

// The same for a log already in memory (used by the fuzz target and tests).
StatusOr<AuditLogSummary> VerifyAuditLogBytes(std::string_view bytes, const AuditVerifyOptions& options,
                                              std::vector<AuditEntry>* entries = nullptr);

struct CheckpointInfo {
  std::string store_id_hex;
  std::string public_key_hex;
  uint64_t record_count = 0;
  std::string head_hash_hex;
  int64_t time_unix_ms = 0;
};

// Parses a checkpoint and checks its signature against the key it names (or `expected_public_key`).
StatusOr<CheckpointInfo> ReadCheckpoint(const std::string& bytes, const std::string& expected_public_key = "");

}  // namespace veil::keys
