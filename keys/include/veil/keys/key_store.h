// The key store: keyrings of versioned keys, principals, restore authorization and the audit log,
// in one folder:
//
//   keystore.veil      sealed key store (clear authenticated header + XChaCha20-Poly1305 body)
//   keystore.veil.bak  the last-known-good previous version
//   audit.log          the hash-chained, signed audit log
//   .lock              flock() target: one writer at a time, readers share
//
// Usage:
//   auto store = KeyStore::Open(dir, Credential::FromPassphrase(...), KeyStore::Access::kReadWrite, "alice");
//   auto handle = (*store)->KeyForNewWork("default");              // logged
//   auto subkey = handle->DeriveSubkey(KeyPurpose::kIdentityFlow, ScopeKind::kDeployment, "");
//
// Every change is logged first (fail closed: no durable record, no change), then saved atomically
// (temporary file, fsync, rename, fsync of the folder). A KeyStore object holds the folder's lock
// for its lifetime. Not thread-safe: use one object per thread or guard it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "veil/keys/audit_log.h"
#include "veil/keys/credential.h"
#include "veil/keys/restore_request.h"
#include "veil/keys/secret.h"
#include "veil/status.h"

namespace veil::keys {

enum class KeyStatus { kEnabled = 1, kDisabled = 2, kDestroyed = 3 };
enum class Role { kAdmin = 1, kOperator = 2, kApprover = 3, kAuditor = 4 };
// Same numbers as veil.proto.ScopeKind.
enum class ScopeKind { kDeployment = 1, kStream = 2, kImage = 3, kFace = 4 };
// What a derived subkey is for; each purpose gets an independent subkey.
// kKeyCheck is only for KeyHandle::KeyCheck (public by design).
enum class KeyPurpose : uint64_t { kIdentityFlow = 1, kPayload = 2, kManifest = 3, kKeyCheck = 4 };

const char* KeyStatusName(KeyStatus status);
const char* RoleName(Role role);
StatusOr<Role> ParseRole(std::string_view name);
const char* ScopeKindName(ScopeKind kind);
StatusOr<ScopeKind> ParseScopeKind(std::string_view name);

// Loggable views: never any key bytes.
struct KeyVersionInfo {
  uint32_t version = 0;
  KeyStatus status = KeyStatus::kEnabled;
  bool primary = false;
  int64_t created_unix = 0;
  int64_t status_changed_unix = 0;
};

struct KeyringInfo {
  std::string name;
  uint32_t primary_version = 0;
  uint32_t required_approvals = 0;
  bool requester_signs = false;  // restores also need the requester's own signature
  std::vector<KeyVersionInfo> versions;
};

struct PrincipalInfo {
  std::string name;
  Role role = Role::kOperator;
  std::string public_key_hex;
  bool revoked = false;
  int64_t added_unix = 0;
  int64_t revoked_unix = 0;
};

struct RecoverOptions {
  bool accept_loss = false;  // see KeyStore::RecoverFromBackup
};

struct KeyStoreInfo {
  std::string store_id_hex;
  uint64_t generation = 0;
  std::string log_public_key_hex;
  std::vector<KeyringInfo> keyrings;
  std::vector<PrincipalInfo> principals;
};

// One released key version. Hides its bytes: it hands out derived subkeys only.
class KeyHandle {
 public:
  const std::string& keyring() const { return keyring_; }
  uint32_t version() const { return version_; }
  // A 32-byte subkey for one purpose and scope: crypto_kdf (context "VeilKDF1", id = purpose),
  // then BLAKE2b keyed by that over (scope kind, scope id). A leaked subkey exposes one scope only.
  SecretBytes DeriveSubkey(KeyPurpose purpose, ScopeKind scope, std::string_view scope_id) const;
  // 16 bytes that tell whether this key material made something named `context` (a manifest id),
  // without revealing the key and without linking two contexts: BLAKE2b keyed by a subkey of its own
  // purpose (kKeyCheck) over the context. Manifests carry it so that a restore can tell a wrong key
  // (another store's under the same keyring name and version) from altered data. Public; it steers
  // error reports only, never a decision (the seals decide).
  std::string KeyCheck(std::string_view context) const;
  KeyHandle Clone() const { return KeyHandle(keyring_, version_, material_.Clone()); }

 private:
  friend class KeyStore;
  friend class RestoreGrant;
  KeyHandle(std::string keyring, uint32_t version, SecretBytes material)
      : keyring_(std::move(keyring)), version_(version), material_(std::move(material)) {}
  std::string keyring_;
  uint32_t version_ = 0;
  SecretBytes material_;
};

// What an authorized restore request may use: key versions of one keyring, for its targets.
class RestoreGrant {
 public:
  const std::string& keyring() const { return keyring_; }
  const std::string& request_id_hex() const { return request_id_hex_; }
  bool Covers(std::string_view target_digest) const;
  // The key a manifest names. FailedPrecondition if that version is disabled or destroyed,
  // PermissionDenied if the request did not cover it or released another keyring.
  StatusOr<KeyHandle> Key(std::string_view keyring, uint32_t version) const;

 private:
  friend class KeyStore;
  std::string keyring_;
  std::string request_id_hex_;
  std::vector<std::string> targets_;
  std::vector<KeyHandle> keys_;
  std::vector<std::pair<uint32_t, KeyStatus>> unavailable_;  // versions that exist but are not enabled
};

class KeyStore {
 public:
  enum class Access { kReadOnly, kReadWrite };
  static constexpr const char* kStoreFile = "keystore.veil";
  static constexpr const char* kBackupFile = "keystore.veil.bak";
  static constexpr const char* kAuditFile = "audit.log";
  // The signed checkpoint of the log that every append replaces (see AuditVerifyOptions::head).
  static constexpr const char* kAuditHeadFile = "audit.log.head";
  static constexpr const char* kLockFile = ".lock";

  // Creates a new store in `dir` (created if missing; must not hold a store yet), its audit log and
  // a first keyring named `keyring` requiring `required_approvals` approvals for restores.
  static StatusOr<std::unique_ptr<KeyStore>> Create(const std::string& dir, const Credential& credential,
                                                    const KdfLimits& limits, const std::string& actor,
                                                    const std::string& keyring, uint32_t required_approvals);
  // Opens a store. kReadWrite takes the exclusive lock and verifies the whole audit log.
  static StatusOr<std::unique_ptr<KeyStore>> Open(const std::string& dir, const Credential& credential,
                                                  Access access, const std::string& actor);
  // Replaces a damaged store file with its last-known-good backup, after the backup opens with the
  // credential. Logged. FailedPrecondition when the store file itself opens: recovery is for damage,
  // never a way to undo the last change (a revocation, a policy, a disabled key). DataLoss when the
  // backup lacks more than the damaged generation's one change (an older file in its place); the
  // change it lacks is logged as undone. Only a damaged or missing store file is replaced (not one
  // that cannot be read or is from a newer Veil). With `accept_loss`, the credential holder's way
  // out of a store that refuses to open because its file is older than its log: the store file as
  // it is (refused when the backup lacks fewer changes) or, when damaged, its backup, however old,
  // is kept, and every change it lacks is logged as lost (a file from before 2026-12-02 does not
  // tell what it lacks: the record says so).
  // `lost`, when given, receives the changes logged as undone or lost ("record 12 (key-rotated ...)").
  static Status RecoverFromBackup(const std::string& dir, const Credential& credential, const std::string& actor,
                                  const RecoverOptions& options = {}, std::vector<std::string>* lost = nullptr);
  // The audit log's public key from the store's clear header (no credential needed; the header is
  // authenticated only when the store is opened, so pin the key or use checkpoints for more).
  static StatusOr<std::string> PeekLogPublicKey(const std::string& dir);
  ~KeyStore();

  KeyStoreInfo Info() const;
  std::string store_id() const;        // raw 16 bytes
  std::string log_public_key() const;  // raw 32 bytes
  std::string audit_path() const;
  // What a read-write open found and logged, one line each, for the operator: a change the audit
  // log records that the store file lacks (an interrupted save, or the file before it put back).
  const std::vector<std::string>& notices() const;

  // Key lifecycle (need kReadWrite).
  Status CreateKeyring(const std::string& name, uint32_t required_approvals);
  StatusOr<uint32_t> Rotate(const std::string& keyring);  // new primary version
  Status SetKeyStatus(const std::string& keyring, uint32_t version, KeyStatus status);
  // `requester_signs`: whether a restore request also needs its requester's own signature (unset:
  // as it was).
  Status SetPolicy(const std::string& keyring, uint32_t required_approvals, std::optional<bool> requester_signs = std::nullopt);

  // Principals (need kReadWrite).
  Status AddPrincipal(const std::string& name, Role role, const std::string& public_key);
  Status RevokePrincipal(const std::string& name);

  // The primary version of a keyring for new work; FailedPrecondition if it is not enabled. Logged.
  StatusOr<KeyHandle> KeyForNewWork(const std::string& keyring, const std::string& purpose_note);

  // Restore authorization (need kReadWrite: every step is logged).
  StatusOr<RestoreRequest> CreateRequest(const RestoreRequestSpec& spec, int64_t now_unix);
  // Verifies `approver`'s signature on a request this store issued (as AuthorizeRestore checks it,
  // at `now_unix`) and logs the approval, or its refusal (AuditAction::kRequestApproved; the
  // requester's own signature: kRequestSigned).
  Status RecordApproval(const RestoreRequest& request, const std::string& approver, int64_t now_unix);
  // Checks the request (this store, unexpired, m valid signatures of distinct unrevoked approvers
  // other than the requester, enabled key) and logs the decision, granted or denied with the
  // reason. The grant is released only after its record is durable. `file_sha256` (raw 32 bytes,
  // optional): the file the caller means to restore, named in a denial's record too; a request
  // that does not name it is denied (PermissionDenied).
  StatusOr<RestoreGrant> AuthorizeRestore(const RestoreRequest& request, int64_t now_unix,
                                          const std::string& file_sha256 = {});

  // Appends a record for an action taken outside the store (e.g. a restore that used a grant);
  // InvalidArgument for the actions only the store records (changes to it, recoveries, and what it
  // checked itself: requests, approvals, requester signatures, authorizations, checkpoints, so that
  // no caller can add an approval the store never verified). A restore's
  // success (kRestorePerformed, kSuccess) must name the keyring and version it used, and is refused
  // (FailedPrecondition, nothing logged) unless that version is still enabled: the caller then logs
  // the restore as failed and releases nothing.
  Status Log(AuditAction action, AuditOutcome outcome, const std::string& target, const std::string& reason,
             const std::vector<std::string>& digests = {}, const std::string& keyring = "", uint32_t version = 0);

  // A signed checkpoint of the audit log (serialized); the export itself is logged first.
  StatusOr<std::string> ExportCheckpoint();

 private:
  struct State;
  explicit KeyStore(std::unique_ptr<State> state);
  Status RequireWritable() const;
  // Writes the next generation. The previous one becomes the backup, unless `keep_previous` is
  // false (a destroyed key): then the backup is a copy of the new generation, so that no file of
  // the store holds the destroyed material any more.
  Status Save(bool keep_previous = true);
  Status Audit(AuditEvent event);
  // Logs a denial and returns `reason` as the status.
  Status Deny(const RestoreRequest& request, const std::string& file_sha256, Status reason);
  // Refuses a store file older than its audit log (see key_store.cc); logs an interrupted save.
  static Status CheckStoreHoldsItsChanges(State& state, const std::vector<AuditEntry>& since_save);
  std::unique_ptr<State> state_;
};

}  // namespace veil::keys
