#include "veil/keys/key_store.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "audit_writer.h"
#include "sealed_file.h"
#include "store_codec.h"
#include "store_history.h"
#include "veil/keys/fs.h"
#include "veil/proto/keystore.pb.h"

namespace veil::keys {
namespace {

constexpr size_t kMaterialBytes = 32;
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "VeilKDF1";
constexpr uint32_t kMaxApprovalsPolicy = 64;
constexpr int64_t kClockSkewSeconds = 300;  // how far ahead of this machine a request's creation may lie

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Join(const std::string& dir, const char* name) { return dir + "/" + name; }

Status ValidateName(const std::string& what, const std::string& name) {
  if (name.empty() || name.size() > 64) return InvalidArgumentError(what + " name must have 1 to 64 characters");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return InvalidArgumentError(what + " name may hold only letters, digits, '-', '_' and '.'");
    }
  }
  return Status::Ok();
}

Status ValidateApprovals(uint32_t m) {
  if (m < 1 || m > kMaxApprovalsPolicy) return InvalidArgumentError("required approvals must be from 1 to 64");
  return Status::Ok();
}

// Version `version` of `ring`, or null.
const proto::KeyVersion* FindVersion(const proto::Keyring& ring, uint32_t version) {
  for (const auto& v : ring.versions()) {
    if (v.version() == version) return &v;
  }
  return nullptr;
}
proto::KeyVersion* FindVersion(proto::Keyring* ring, uint32_t version) {
  return const_cast<proto::KeyVersion*>(FindVersion(std::as_const(*ring), version));
}

std::string KeyLabel(const std::string& keyring, uint32_t version) {
  return keyring + " v" + std::to_string(version);
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------

const char* KeyStatusName(KeyStatus s) {
  switch (s) {
    case KeyStatus::kEnabled: return "enabled";
    case KeyStatus::kDisabled: return "disabled";
    case KeyStatus::kDestroyed: return "destroyed";
  }
  return "unknown";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin: return "admin";
    case Role::kOperator: return "operator";
    case Role::kApprover: return "approver";
    case Role::kAuditor: return "auditor";
  }
  return "unknown";
}

StatusOr<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kOperator, Role::kApprover, Role::kAuditor}) {
    if (name == RoleName(r)) return r;
  }
  return InvalidArgumentError("unknown role '" + std::string(name) + "' (admin, operator, approver, auditor)");
}

const char* ScopeKindName(ScopeKind k) {
  switch (k) {
    case ScopeKind::kDeployment: return "deployment";
    case ScopeKind::kStream: return "stream";
    case ScopeKind::kImage: return "image";
    case ScopeKind::kFace: return "face";
  }
  return "unknown";
}

StatusOr<ScopeKind> ParseScopeKind(std::string_view name) {
  for (ScopeKind k : {ScopeKind::kDeployment, ScopeKind::kStream, ScopeKind::kImage, ScopeKind::kFace}) {
    if (name == ScopeKindName(k)) return k;
  }
  return InvalidArgumentError("unknown scope '" + std::string(name) + "' (deployment, stream, image, face)");
}

// ---- handles ----------------------------------------------------------------------------------

std::string KeyHandle::KeyCheck(std::string_view context) const {
  auto access = SecretAccess::Get();
  SecretBytes check_key(crypto_kdf_KEYBYTES);
  crypto_kdf_derive_from_key(check_key.data(access), check_key.size(), static_cast<uint64_t>(KeyPurpose::kKeyCheck),
                             kKdfContext, material_.data(access));
  const std::string msg = "veil-key-check-v1" + std::string(context);
  unsigned char check[16];
  crypto_generichash(check, sizeof(check), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                     check_key.data(access), check_key.size());
  return std::string(reinterpret_cast<const char*>(check), sizeof(check));
}

SecretBytes KeyHandle::DeriveSubkey(KeyPurpose purpose, ScopeKind scope, std::string_view scope_id) const {
  auto access = SecretAccess::Get();
  SecretBytes purpose_key(crypto_kdf_KEYBYTES);
  crypto_kdf_derive_from_key(purpose_key.data(access), purpose_key.size(), static_cast<uint64_t>(purpose),
                             kKdfContext, material_.data(access));
  std::string msg = "veil-scope-v1";
  msg.push_back(static_cast<char>(scope));
  uint32_t n = static_cast<uint32_t>(scope_id.size());
  for (int i = 0; i < 4; ++i) msg.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  msg.append(scope_id);
  SecretBytes out(32);
  crypto_generichash(out.data(access), out.size(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                     purpose_key.data(access), purpose_key.size());
  return out;
}

bool RestoreGrant::Covers(std::string_view target_digest) const {
  return std::find(targets_.begin(), targets_.end(), target_digest) != targets_.end();
}

StatusOr<KeyHandle> RestoreGrant::Key(std::string_view keyring, uint32_t version) const {
  if (keyring != keyring_) {
    return PermissionDeniedError("the restore request releases keyring '" + keyring_ + "'; this was sealed under '" +
                                 Printable(keyring) + "'");
  }
  for (const auto& k : keys_) {
    if (k.version() == version) return k.Clone();
  }
  for (const auto& [v, status] : unavailable_) {
    if (v != version) continue;
    return FailedPreconditionError("key " + KeyLabel(keyring_, version) + " is " + KeyStatusName(status) +
                                   (status == KeyStatus::kDestroyed ? ": what it sealed is unrecoverable" : ""));
  }
  return PermissionDeniedError("the restore grant does not cover key " + KeyLabel(keyring_, version) +
                               " (not enabled when it was authorized, or not requested)");
}

// ---- state ------------------------------------------------------------------------------------

struct KeyStore::State {
  std::string dir;
  std::string actor;
  Access access = Access::kReadOnly;
  std::optional<FileLock> lock;
  proto::SealedHeader header;
  proto::KeyStoreBody body;  // with every secret field cleared
  std::map<std::pair<std::string, uint32_t>, SecretBytes> materials;
  SecretBytes log_secret;
  SecretBytes file_key;
  std::unique_ptr<internal::AuditWriter> audit;
  std::optional<AuditEvent> last_logged;  // the change Save() makes durable follows its record
  bool broken = false;
  std::vector<std::string> notices;  // what Open found and logged

  proto::Keyring* FindKeyring(const std::string& name) {
    for (auto& k : *body.mutable_keyrings()) {
      if (k.name() == name) return &k;
    }
    return nullptr;
  }
  proto::Principal* FindPrincipal(const std::string& name) {
    for (auto& p : *body.mutable_principals()) {
      if (p.name() == name) return &p;
    }
    return nullptr;
  }
};

namespace internal {

StatusOr<Loaded> Decode(const SealedFile& file, SecretBytes file_key) {
  VEIL_ASSIGN_OR_RETURN(SecretBytes plain, internal::OpenSealed(file, file_key));
  Loaded out;
  out.header = file.header;
  auto access = SecretAccess::Get();
  if (!out.body.ParseFromArray(plain.data(access), static_cast<int>(plain.size()))) {
    return DataLossError("key store body does not parse");
  }
  Status bad;
  if (out.body.store_id() != file.header.store_id() || out.body.generation() != file.header.generation()) {
    bad = DataLossError("key store body does not match its header");
  }
  for (auto& ring : *out.body.mutable_keyrings()) {
    for (auto& v : *ring.mutable_versions()) {
      bool destroyed = v.status() == proto::KEY_STATUS_DESTROYED;
      if (bad.ok() && v.material().size() != (destroyed ? 0 : kMaterialBytes)) {
        bad = DataLossError("key store holds a malformed key");
      }
      if (!destroyed && bad.ok()) {
        out.materials.emplace(std::make_pair(ring.name(), v.version()),
                              SecretBytes::Copy(v.material().data(), v.material().size()));
      }
      WipeString(v.mutable_material());
    }
  }
  if (bad.ok() && out.body.log_secret_key().size() != crypto_sign_SECRETKEYBYTES) {
    bad = DataLossError("key store holds a malformed log key");
  }
  if (bad.ok()) out.log_secret = SecretBytes::Copy(out.body.log_secret_key().data(), out.body.log_secret_key().size());
  WipeString(out.body.mutable_log_secret_key());
  if (!bad.ok()) return bad;
  out.file_key = std::move(file_key);
  return out;
}

}  // namespace internal

namespace {

using internal::Decode;
using internal::Loaded;

// `bytes` (if given) receives the file's bytes: what was checked is what the caller writes on.
StatusOr<internal::SealedFile> ReadStoreFile(const std::string& path, std::string* bytes_out = nullptr) {
  auto bytes = ReadFile(path, 64u << 20);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return NotFoundError("no key store at " + path + " (create one with `veil keys init`)");
    }
    return bytes.status();
  }
  VEIL_ASSIGN_OR_RETURN(internal::SealedFile file, internal::ParseSealed(*bytes));
  if (bytes_out) *bytes_out = std::move(*bytes);
  if (file.header.content() != proto::SealedHeader::CONTENT_KEY_STORE) {
    return InvalidArgumentError(path + " is a sealed Veil file but not a key store");
  }
  return file;
}

// Before a key is destroyed: removes every file of `dir` that may hold an older generation of the
// store (the backup, and temporary files a crash left behind), and makes that durable, so that a
// crash at any later point leaves the destroyed material in no file of the store.
Status RemoveOlderGenerations(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool temporary = name.rfind(std::string(KeyStore::kStoreFile) + ".tmp.", 0) == 0 ||
                           name.rfind(std::string(KeyStore::kBackupFile) + ".tmp", 0) == 0;
    if (name == KeyStore::kBackupFile || temporary) {
      if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT) {
        return IoError("cannot remove " + name + " before destroying a key: " + std::strerror(errno));
      }
    }
  }
  if (ec) return IoError("cannot list the key store folder: " + ec.message());
  return FsyncDir(dir);
}

// A file key derived once for given KDF parameters: the store file and its backup share them, so a
// recovery that opens both runs Argon2id once.
struct DerivedKeyCache {
  bool derived = false;
  std::string kdf;  // the serialized parameters `key` was derived for
  SecretBytes key;
};

StatusOr<SecretBytes> DeriveFileKeyOnce(const Credential& credential, const proto::KdfParams& kdf,
                                        DerivedKeyCache* cache) {
  if (cache == nullptr) return internal::DeriveFileKey(credential, kdf);
  std::string params = kdf.SerializeAsString();
  if (!cache->derived || cache->kdf != params) {
    VEIL_ASSIGN_OR_RETURN(cache->key, internal::DeriveFileKey(credential, kdf));
    cache->kdf = std::move(params);
    cache->derived = true;
  }
  return cache->key.Clone();
}

// Opens the store file, telling a wrong credential from a damaged file with the help of the backup.
StatusOr<Loaded> LoadStore(const std::string& dir, const Credential& credential, DerivedKeyCache* cache = nullptr) {
  const std::string path = Join(dir, KeyStore::kStoreFile);
  const std::string bak = Join(dir, KeyStore::kBackupFile);
  auto file = ReadStoreFile(path);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kDataLoss && ReadStoreFile(bak).ok()) {
      return DataLossError("key store file is damaged (" + file.status().message() +
                           "); a last-known-good backup exists: run `veil keys recover`");
    }
    return file.status();
  }
  VEIL_ASSIGN_OR_RETURN(SecretBytes file_key, DeriveFileKeyOnce(credential, file->header.kdf(), cache));
  SecretBytes key_copy = file_key.Clone();
  auto loaded = Decode(*file, std::move(file_key));
  if (loaded.ok() || loaded.status().code() != StatusCode::kUnauthenticated) return loaded;
  // Wrong credential, or a damaged file? The backup was sealed with the same KDF parameters.
  auto backup = ReadStoreFile(bak);
  if (backup.ok() && backup->header.kdf().SerializeAsString() == file->header.kdf().SerializeAsString() &&
      Decode(*backup, std::move(key_copy)).ok()) {
    return DataLossError("key store file fails authentication but its last-known-good backup opens: "
                         "the file was altered or damaged; run `veil keys recover`");
  }
  return UnauthenticatedError("wrong passphrase or key file (or the key store was altered)");
}

}  // namespace

KeyStore::KeyStore(std::unique_ptr<State> state) : state_(std::move(state)) {}
KeyStore::~KeyStore() = default;

StatusOr<std::unique_ptr<KeyStore>> KeyStore::Create(const std::string& dir, const Credential& credential,
                                                     const KdfLimits& limits, const std::string& actor,
                                                     const std::string& keyring, uint32_t required_approvals) {
  EnsureSodium();
  VEIL_RETURN_IF_ERROR(ValidateName("keyring", keyring));
  VEIL_RETURN_IF_ERROR(ValidateApprovals(required_approvals));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return IoError("cannot create folder " + dir + ": " + std::strerror(errno));
  }
  auto st = std::make_unique<State>();
  st->dir = dir;
  st->actor = actor;
  st->access = Access::kReadWrite;
  VEIL_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(Join(dir, kLockFile), FileLock::Mode::kExclusive));
  st->lock.emplace(std::move(lock));
  for (const char* name : {kStoreFile, kAuditFile, kAuditHeadFile}) {
    if (PathExists(Join(dir, name))) return AlreadyExistsError(dir + " already holds a key store or its audit log (" + name + ")");
  }
  std::string store_id(16, '\0');
  randombytes_buf(store_id.data(), store_id.size());
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  st->log_secret = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()), st->log_secret.data(SecretAccess::Get()));

  st->header.set_format_version(internal::kSealFormatVersion);
  st->header.mutable_producer()->set_name("veil");
  st->header.mutable_producer()->set_version(VEIL_VERSION);
  st->header.set_content(proto::SealedHeader::CONTENT_KEY_STORE);
  *st->header.mutable_kdf() = internal::NewKdfParams(credential, limits);
  st->header.set_store_id(store_id);
  st->header.set_generation(0);
  st->header.set_log_public_key(pk);
  VEIL_ASSIGN_OR_RETURN(st->file_key, internal::DeriveFileKey(credential, st->header.kdf()));
  st->body.set_store_id(store_id);

  VEIL_RETURN_IF_ERROR(internal::AuditWriter::Create(Join(dir, kAuditFile), store_id, pk));
  VEIL_ASSIGN_OR_RETURN(st->audit, internal::AuditWriter::Open(Join(dir, kAuditFile), store_id, st->log_secret));
  VEIL_RETURN_IF_ERROR(st->audit->FinishOpen(nullptr, /*new_log=*/true));  // the new log's head file
  std::unique_ptr<KeyStore> store(new KeyStore(std::move(st)));
  AuditEvent created{actor, AuditAction::kStoreCreated, ToHex(store_id), {}, AuditOutcome::kSuccess, "", "", 0};
  VEIL_RETURN_IF_ERROR(store->Audit(created));
  VEIL_RETURN_IF_ERROR(store->CreateKeyring(keyring, required_approvals));
  return store;
}

StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& dir, const Credential& credential,
                                                   Access access, const std::string& actor) {
  EnsureSodium();
  if (!PathExists(Join(dir, kStoreFile))) {
    return NotFoundError("no key store in " + dir + " (create one with `veil keys init`)");
  }
  auto st = std::make_unique<State>();
  st->dir = dir;
  st->actor = actor;
  st->access = access;
  VEIL_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(Join(dir, kLockFile), access == Access::kReadWrite
                                                                                  ? FileLock::Mode::kExclusive
                                                                                  : FileLock::Mode::kShared));
  st->lock.emplace(std::move(lock));
  VEIL_ASSIGN_OR_RETURN(Loaded loaded, LoadStore(dir, credential));
  st->header = std::move(loaded.header);
  st->body = std::move(loaded.body);
  st->materials = std::move(loaded.materials);
  st->log_secret = std::move(loaded.log_secret);
  st->file_key = std::move(loaded.file_key);
  if (access == Access::kReadWrite) {
    const uint64_t saved_at = st->body.audit_records();  // 0: a store from before the field
    std::vector<AuditEntry> since_save;
    VEIL_ASSIGN_OR_RETURN(st->audit, internal::AuditWriter::Open(Join(dir, kAuditFile), st->header.store_id(),
                                                                 st->log_secret, saved_at, &since_save));
    if (st->audit->verified_record_count() < saved_at) {
      return DataLossError("the audit log holds " + std::to_string(st->audit->verified_record_count()) +
                           " records, but the key store was saved after record " + std::to_string(saved_at) +
                           ": the log was cut short");
    }
    if (saved_at > 0) VEIL_RETURN_IF_ERROR(CheckStoreHoldsItsChanges(*st, since_save));
    std::string head_notice;  // a missing head file, logged only now that the open is accepted
    VEIL_RETURN_IF_ERROR(st->audit->FinishOpen(&head_notice));
    if (!head_notice.empty()) st->notices.push_back(head_notice);
  }
  return std::unique_ptr<KeyStore>(new KeyStore(std::move(st)));
}

// The store file must hold every change its log records as done. A change is logged before it is
// saved, so a crash can leave the last one out: that is logged as failed and reported. Anything
// else missing (two changes, or one followed by later ones) means an older store file was put back.
Status KeyStore::CheckStoreHoldsItsChanges(State& st, const std::vector<AuditEntry>& since_save) {
  const internal::UnsavedChanges unsaved = internal::FindUnsavedChanges(since_save);
  if (unsaved.missing.empty()) return Status::Ok();
  const std::string where = "the key store file (generation " + std::to_string(st.header.generation()) +
                            ", saved after record " + std::to_string(st.body.audit_records()) + ")";
  if (unsaved.missing.size() > 1 || !unsaved.trailing) {
    return DataLossError(where + " lacks " + std::to_string(unsaved.missing.size()) +
                         (unsaved.missing.size() > 1 ? " changes" : " change") + " that the audit log records: " +
                         internal::DescribeChanges(unsaved.missing) +
                         "; an older store file was put back: put the newest keystore.veil back");
  }
  AuditEvent undone = unsaved.missing.front().event;
  undone.actor = "veil";
  undone.outcome = AuditOutcome::kFailed;
  undone.reason = "not in " + where + ": its save was interrupted, or the store file was replaced by the one before it";
  VEIL_RETURN_IF_ERROR(st.audit->Append(undone));
  st.notices.push_back("the change logged as " + internal::DescribeChanges(unsaved.missing) + " is not in " + where +
                       ": its save was interrupted, or the file was replaced by the one before it; logged as failed");
  return Status::Ok();
}

namespace {

// The records of `records` from sequence `from` on.
std::vector<AuditEntry> From(const std::vector<AuditEntry>& records, uint64_t from) {
  std::vector<AuditEntry> out;
  for (const AuditEntry& r : records) {
    if (r.sequence >= from) out.push_back(r);
  }
  return out;
}

StatusOr<Loaded> LoadBackup(const std::string& dir, const Credential& credential, std::string* bytes,
                            DerivedKeyCache* cache) {
  VEIL_ASSIGN_OR_RETURN(internal::SealedFile file, ReadStoreFile(Join(dir, KeyStore::kBackupFile), bytes));
  VEIL_ASSIGN_OR_RETURN(SecretBytes file_key, DeriveFileKeyOnce(credential, file.header.kdf(), cache));
  return Decode(file, std::move(file_key));
}

}  // namespace

Status KeyStore::RecoverFromBackup(const std::string& dir, const Credential& credential, const std::string& actor,
                                   const RecoverOptions& options, std::vector<std::string>* lost) {
  EnsureSodium();
  if (lost) lost->clear();
  VEIL_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(Join(dir, kLockFile), FileLock::Mode::kExclusive));
  // The file to keep: the store file itself when it opens (only to accept what it lacks), else the
  // backup, and only when the store file is damaged or gone (not unreadable, nor from a newer Veil).
  DerivedKeyCache derived;
  StatusOr<Loaded> current = LoadStore(dir, credential, &derived);
  const bool keep_current = current.ok();
  if (!keep_current && current.status().code() != StatusCode::kDataLoss &&
      current.status().code() != StatusCode::kNotFound) {
    return current.status();
  }
  std::string backup_bytes;
  StatusOr<Loaded> backup = LoadBackup(dir, credential, &backup_bytes, &derived);
  if (!keep_current && !backup.ok()) return backup.status();
  Loaded& loaded = keep_current ? *current : *backup;
  const std::string what = std::string(keep_current ? kStoreFile : kBackupFile) + " (generation " +
                           std::to_string(loaded.header.generation()) + ")";
  const uint64_t saved_at = loaded.body.audit_records();  // 0: a file from before the field
  const bool compare_backup = keep_current && backup.ok() && backup->body.audit_records() > 0;
  std::vector<AuditEntry> records;
  auto writer = internal::AuditWriter::Open(
      Join(dir, kAuditFile), loaded.header.store_id(), loaded.log_secret,
      compare_backup ? std::min(saved_at, backup->body.audit_records()) : saved_at, &records);
  if (!writer.ok()) return writer.status();
  if ((*writer)->verified_record_count() < saved_at) {
    return DataLossError("the audit log holds " + std::to_string((*writer)->verified_record_count()) +
                         " records, but " + what + " was saved after record " + std::to_string(saved_at) +
                         ": the log was cut short");
  }
  if (saved_at == 0 && !options.accept_loss) {
    return FailedPreconditionError(what + " is from before the store recorded its place in the audit log, so what "
                                   "it lacks cannot be told; add --accept-loss to use it anyway");
  }
  const std::vector<AuditEntry> missing =
      saved_at > 0 ? internal::FindUnsavedChanges(From(records, saved_at)).missing : std::vector<AuditEntry>{};
  if (keep_current) {
    if (!options.accept_loss || (saved_at > 0 && missing.empty())) {
      return FailedPreconditionError(
          "the key store file opens" +
          (missing.empty() ? std::string(" and holds every change its audit log records")
                           : "; it lacks " + internal::DescribeChanges(missing) + " (keep it with --accept-loss)") +
          ": `veil keys recover` replaces only a damaged file");
    }
    if (compare_backup && backup->body.audit_records() <= (*writer)->verified_record_count()) {
      const size_t backup_missing =
          internal::FindUnsavedChanges(From(records, backup->body.audit_records())).missing.size();
      if (backup_missing < missing.size()) {
        return FailedPreconditionError(std::string(kBackupFile) + " lacks fewer changes than " + what +
                                       ": put it in place of the store file first");
      }
    }
  }
  // A true backup is the generation before the damaged one: it lacks at most that generation's
  // change, and no recovery came after that change (a backup never gets older). Anything else
  // means an older file was put in its place.
  if (!keep_current && !options.accept_loss &&
      (missing.size() > 1 ||
       (!missing.empty() && internal::RecoveredSince(records, missing.front().sequence, kStoreFile)))) {
    return DataLossError(what + " lacks " + std::to_string(missing.size()) + (missing.size() > 1 ? " changes" : " change") +
                         " that the audit log records: " + internal::DescribeChanges(missing) +
                         (missing.size() > 1 ? "" : ", and a recovery came after it") +
                         "; it is older than the generation before the store file's: put the newest keystore.veil "
                         "back, or add --accept-loss to use it and log those changes as lost");
  }
  VEIL_RETURN_IF_ERROR((*writer)->FinishOpen(nullptr));  // a missing head file is logged (the record says so)
  // The lost changes are accounted for first, so that a recovery cut short by a crash and run again
  // finds nothing missing.
  const std::string lost_reason = options.accept_loss ? "accepted as lost: the key store continues from " + what
                                                      : "undone: the key store file was recovered from its backup";
  for (const AuditEntry& change : missing) {
    AuditEvent undone = change.event;
    undone.actor = actor;
    undone.outcome = AuditOutcome::kFailed;
    undone.reason = lost_reason;
    VEIL_RETURN_IF_ERROR((*writer)->Append(undone));
    if (lost) lost->push_back(internal::DescribeChanges({change}));
  }
  AuditEvent e{actor, AuditAction::kLogRecovered, kStoreFile, {}, AuditOutcome::kSuccess,
               (keep_current ? "key store file kept as it is, " + what
                             : "key store file replaced by its last-known-good backup, " + what) +
                   (missing.empty() ? "" : "; lost: " + internal::DescribeChanges(missing)) +
                   (saved_at == 0 ? "; from before the store recorded its place in the log: what it lacks is unknown"
                                  : ""),
               "", 0};
  VEIL_RETURN_IF_ERROR((*writer)->Append(e));
  return keep_current ? Status::Ok() : WriteFileAtomic(Join(dir, kStoreFile), backup_bytes, /*overwrite=*/true);
}

StatusOr<std::string> KeyStore::PeekLogPublicKey(const std::string& dir) {
  VEIL_ASSIGN_OR_RETURN(internal::SealedFile file, ReadStoreFile(Join(dir, kStoreFile)));
  return file.header.log_public_key();
}

// ---- persistence ------------------------------------------------------------------------------

Status KeyStore::RequireWritable() const {
  if (state_->access != Access::kReadWrite) return FailedPreconditionError("key store was opened read-only");
  if (state_->broken) return FailedPreconditionError("an earlier save failed; reopen the key store");
  return Status::Ok();
}

Status KeyStore::Audit(AuditEvent event) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  if (event.actor.empty()) event.actor = state_->actor;
  Status st = state_->audit->Append(event);
  if (!st.ok()) return st.WithContext("audit record could not be written; nothing was done");
  state_->last_logged = std::move(event);
  return st;
}

Status KeyStore::Save(bool keep_previous) {
  State& s = *state_;
  proto::SealedHeader header = s.header;
  header.set_generation(s.header.generation() + 1);
  bool enforced_policy = false;
  for (const auto& ring : s.body.keyrings()) enforced_policy |= ring.policy().requester_signs();
  header.set_format_version(enforced_policy ? internal::kSealFormatVersionEnforcedPolicy : internal::kSealFormatVersion);
  proto::KeyStoreBody full = s.body;
  full.set_generation(header.generation());
  if (s.audit) full.set_audit_records(s.audit->record_count());
  auto access = SecretAccess::Get();
  for (auto& ring : *full.mutable_keyrings()) {
    for (auto& v : *ring.mutable_versions()) {
      auto it = s.materials.find({ring.name(), v.version()});
      if (it != s.materials.end()) v.set_material(std::string(it->second.view(access)));
    }
  }
  full.set_log_secret_key(std::string(s.log_secret.view(access)));
  SecretBytes plain = internal::SerializeSecret(full);
  for (auto& ring : *full.mutable_keyrings()) {
    for (auto& v : *ring.mutable_versions()) WipeString(v.mutable_material());
  }
  WipeString(full.mutable_log_secret_key());
  std::string bytes = internal::Seal(header, s.file_key, plain);

  const std::string path = Join(s.dir, kStoreFile);
  Status st;
  if (!keep_previous) st = RemoveOlderGenerations(s.dir);
  if (keep_previous && PathExists(path)) {
    // Keep the previous version as the last-known-good backup (a hard link: atomic, no copy; a copy
    // where the file system has no hard links, FAT or exFAT, which has no file owners either).
    const std::string bak_tmp = Join(s.dir, kBackupFile) + ".tmp";
    ::unlink(bak_tmp.c_str());
    if (::link(path.c_str(), bak_tmp.c_str()) != 0) {
      const int e = errno;
      if (HardLinksMissing(e)) {
        auto previous = ReadFile(path);
        st = previous.ok() ? WriteFileAtomic(Join(s.dir, kBackupFile), *previous, /*overwrite=*/true) : previous.status();
        if (!st.ok()) st = st.WithContext("cannot keep a backup of the key store");
      } else {
        st = IoError(std::string("cannot keep a backup of the key store: ") + std::strerror(e));
      }
    } else if (::rename(bak_tmp.c_str(), Join(s.dir, kBackupFile).c_str()) != 0) {
      st = IoError(std::string("cannot keep a backup of the key store: ") + std::strerror(errno));
    }
  }
  if (st.ok()) st = WriteFileAtomic(path, bytes, /*overwrite=*/true);
  if (!st.ok()) {
    s.broken = true;
    // The change was logged as done before it was saved: the log says that it was not, if it can.
    if (s.last_logged && s.audit) {
      AuditEvent undone = *s.last_logged;
      undone.outcome = AuditOutcome::kFailed;
      undone.reason = "save failed (" + st.message() + "); reopen the store to see whether the change holds" +
                      (undone.reason.empty() ? "" : ": " + undone.reason);
      (void)s.audit->Append(undone);
    }
    return st.WithContext("saving the key store");
  }
  s.header.set_generation(header.generation());
  s.body.set_generation(header.generation());
  s.body.set_audit_records(full.audit_records());
  if (!keep_previous) {  // a copy of its own (a link would share the damage the backup is there for)
    st = WriteFileAtomic(Join(s.dir, kBackupFile), bytes, /*overwrite=*/true);
    if (!st.ok()) {
      s.broken = true;
      return st.WithContext(std::string("the change is saved, but the store has no backup ") + kBackupFile);
    }
  }
  return Status::Ok();
}

// ---- queries ----------------------------------------------------------------------------------

std::string KeyStore::store_id() const { return state_->header.store_id(); }
std::string KeyStore::log_public_key() const { return state_->header.log_public_key(); }
std::string KeyStore::audit_path() const { return Join(state_->dir, kAuditFile); }
const std::vector<std::string>& KeyStore::notices() const { return state_->notices; }

KeyStoreInfo KeyStore::Info() const {
  const State& s = *state_;
  KeyStoreInfo info;
  info.store_id_hex = ToHex(s.header.store_id());
  info.generation = s.header.generation();
  info.log_public_key_hex = ToHex(s.header.log_public_key());
  for (const auto& ring : s.body.keyrings()) {
    KeyringInfo k;
    k.name = ring.name();
    k.primary_version = ring.primary_version();
    k.required_approvals = ring.policy().required_approvals();
    k.requester_signs = ring.policy().requester_signs();
    for (const auto& v : ring.versions()) {
      k.versions.push_back({v.version(), static_cast<KeyStatus>(v.status()), v.version() == ring.primary_version(),
                            v.created_unix(), v.status_changed_unix()});
    }
    info.keyrings.push_back(std::move(k));
  }
  for (const auto& p : s.body.principals()) {
    info.principals.push_back({p.name(), static_cast<Role>(p.role()), ToHex(p.public_key()), p.revoked(),
                               p.added_unix(), p.revoked_unix()});
  }
  return info;
}

// ---- key lifecycle ----------------------------------------------------------------------------

Status KeyStore::CreateKeyring(const std::string& name, uint32_t required_approvals) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  VEIL_RETURN_IF_ERROR(ValidateName("keyring", name));
  VEIL_RETURN_IF_ERROR(ValidateApprovals(required_approvals));
  if (state_->FindKeyring(name)) return AlreadyExistsError("keyring '" + name + "' already exists");
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kKeyringCreated, name, {}, AuditOutcome::kSuccess,
                              "requires " + std::to_string(required_approvals) + " approvals", name, 1}));
  auto* ring = state_->body.add_keyrings();
  ring->set_name(name);
  ring->set_primary_version(1);
  ring->mutable_policy()->set_required_approvals(required_approvals);
  auto* v = ring->add_versions();
  v->set_version(1);
  v->set_status(proto::KEY_STATUS_ENABLED);
  v->set_created_unix(NowUnix());
  v->set_status_changed_unix(v->created_unix());
  state_->materials.emplace(std::make_pair(name, 1u), SecretBytes::Random(kMaterialBytes));
  return Save();
}

StatusOr<uint32_t> KeyStore::Rotate(const std::string& keyring) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  auto* ring = state_->FindKeyring(keyring);
  if (!ring) return NotFoundError("no keyring named '" + keyring + "'");
  uint32_t next = 1;
  for (const auto& v : ring->versions()) next = std::max(next, v.version() + 1);
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kKeyRotated, keyring, {}, AuditOutcome::kSuccess,
                              "new primary version " + std::to_string(next), keyring, next}));
  auto* v = ring->add_versions();
  v->set_version(next);
  v->set_status(proto::KEY_STATUS_ENABLED);
  v->set_created_unix(NowUnix());
  v->set_status_changed_unix(v->created_unix());
  ring->set_primary_version(next);
  state_->materials.emplace(std::make_pair(keyring, next), SecretBytes::Random(kMaterialBytes));
  VEIL_RETURN_IF_ERROR(Save());
  return next;
}

Status KeyStore::SetKeyStatus(const std::string& keyring, uint32_t version, KeyStatus status) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  auto* ring = state_->FindKeyring(keyring);
  if (!ring) return NotFoundError("no keyring named '" + keyring + "'");
  proto::KeyVersion* v = FindVersion(ring, version);
  if (!v) return NotFoundError("keyring '" + keyring + "' has no version " + std::to_string(version));
  if (v->status() == proto::KEY_STATUS_DESTROYED) {
    return FailedPreconditionError("key " + KeyLabel(keyring, version) + " is destroyed; it cannot change state");
  }
  if (static_cast<KeyStatus>(v->status()) == status) {
    return FailedPreconditionError("key " + KeyLabel(keyring, version) + " is already " + KeyStatusName(status));
  }
  AuditAction action = status == KeyStatus::kEnabled    ? AuditAction::kKeyEnabled
                       : status == KeyStatus::kDisabled ? AuditAction::kKeyDisabled
                                                        : AuditAction::kKeyDestroyed;
  VEIL_RETURN_IF_ERROR(Audit({"", action, keyring, {}, AuditOutcome::kSuccess, "", keyring, version}));
  v->set_status(static_cast<proto::KeyStatus>(status));
  v->set_status_changed_unix(NowUnix());
  if (status == KeyStatus::kDestroyed) state_->materials.erase({keyring, version});  // wiped by SecretBytes
  return Save(/*keep_previous=*/status != KeyStatus::kDestroyed);
}

Status KeyStore::SetPolicy(const std::string& keyring, uint32_t required_approvals, std::optional<bool> requester_signs) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  VEIL_RETURN_IF_ERROR(ValidateApprovals(required_approvals));
  auto* ring = state_->FindKeyring(keyring);
  if (!ring) return NotFoundError("no keyring named '" + keyring + "'");
  const bool signs = requester_signs.value_or(ring->policy().requester_signs());
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kPolicyChanged, keyring, {}, AuditOutcome::kSuccess,
                              "requires " + std::to_string(required_approvals) + " approvals" +
                                  (signs ? " and the requester's signature" : ""),
                              keyring, 0}));
  ring->mutable_policy()->set_required_approvals(required_approvals);
  ring->mutable_policy()->set_requester_signs(signs);
  return Save();
}

StatusOr<KeyHandle> KeyStore::KeyForNewWork(const std::string& keyring, const std::string& purpose_note) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  auto* ring = state_->FindKeyring(keyring);
  if (!ring) return NotFoundError("no keyring named '" + keyring + "'");
  uint32_t version = ring->primary_version();
  auto it = state_->materials.find({keyring, version});
  if (const proto::KeyVersion* v = FindVersion(*ring, version); v && v->status() != proto::KEY_STATUS_ENABLED) {
    return FailedPreconditionError("primary key " + KeyLabel(keyring, version) + " is " +
                                   KeyStatusName(static_cast<KeyStatus>(v->status())) + "; rotate the keyring");
  }
  if (it == state_->materials.end()) return FailedPreconditionError("primary key " + KeyLabel(keyring, version) + " is unavailable");
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kKeyUsed, purpose_note, {}, AuditOutcome::kSuccess, "", keyring, version}));
  return KeyHandle(keyring, version, it->second.Clone());
}

// ---- principals -------------------------------------------------------------------------------

Status KeyStore::AddPrincipal(const std::string& name, Role role, const std::string& public_key) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  VEIL_RETURN_IF_ERROR(ValidateName("principal", name));
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES) return InvalidArgumentError("public key must be 32 bytes (Ed25519)");
  if (state_->FindPrincipal(name)) return AlreadyExistsError("principal '" + name + "' already exists");
  for (const auto& p : state_->body.principals()) {
    if (p.public_key() == public_key) return AlreadyExistsError("principal '" + p.name() + "' already uses this key");
  }
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kPrincipalAdded, name, {public_key}, AuditOutcome::kSuccess,
                              std::string("role ") + RoleName(role), "", 0}));
  auto* p = state_->body.add_principals();
  p->set_name(name);
  p->set_role(static_cast<proto::Role>(role));
  p->set_public_key(public_key);
  p->set_added_unix(NowUnix());
  return Save();
}

Status KeyStore::RevokePrincipal(const std::string& name) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  auto* p = state_->FindPrincipal(name);
  if (!p) return NotFoundError("no principal named '" + name + "'");
  if (p->revoked()) return FailedPreconditionError("principal '" + name + "' is already revoked");
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kPrincipalRevoked, name, {}, AuditOutcome::kSuccess, "", "", 0}));
  p->set_revoked(true);
  p->set_revoked_unix(NowUnix());
  return Save();
}

// ---- restore authorization --------------------------------------------------------------------

StatusOr<RestoreRequest> KeyStore::CreateRequest(const RestoreRequestSpec& spec, int64_t now_unix) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  if (!state_->FindKeyring(spec.keyring)) return NotFoundError("no keyring named '" + spec.keyring + "'");
  auto* requester = state_->FindPrincipal(spec.requester);
  if (!requester || requester->revoked() ||
      (requester->role() != proto::ROLE_OPERATOR && requester->role() != proto::ROLE_ADMIN)) {
    return PermissionDeniedError("requester '" + spec.requester + "' must be an unrevoked operator or admin");
  }
  VEIL_ASSIGN_OR_RETURN(RestoreRequest request, RestoreRequest::Build(spec, store_id(), now_unix));
  request.issuer_signature_ = SignWithDomain(kRequestIssuedDomain, request.digest(), state_->log_secret);
  std::vector<std::string> digests{request.digest()};
  digests.insert(digests.end(), request.targets().begin(), request.targets().end());
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kRequestCreated, request.info().request_id_hex, digests,
                              AuditOutcome::kSuccess,
                              "requester " + spec.requester + "; case " + spec.case_id + ": " + spec.purpose, spec.keyring,
                              spec.key_version}));
  return request;
}

namespace {

// Whether an approval counts: its signature (over the request and its time) must verify
// (PermissionDenied, with why), and it must be dated before the request expired (DeadlineExceeded).
// An earlier date than the request's own is an approver's clock running behind: it cannot predate
// the digest it signs.
Status CheckApproval(const RestoreRequest& request, const RestoreRequest::Approval& a, const std::string& public_key) {
  const auto& info = request.info();
  if (VerifySignature(kApprovalDomain, ApprovalMessage(request.digest(), a.signed_unix), a.signature, public_key)) {
    if (a.signed_unix >= info.expires_unix) return DeadlineExceededError("approved after the request expired");
    return Status::Ok();
  }
  if (VerifySignature(kApprovalDomainV1, request.digest(), a.signature, public_key)) {
    return PermissionDeniedError("an approval by an older Veil, without a signed time: approve again");
  }
  return PermissionDeniedError("bad signature");
}

// Only a request a store made (and logged) is considered: its requester, dates and targets are
// then the store's, not whatever a hand-made request file claims. PermissionDenied otherwise.
Status CheckIssued(const RestoreRequest& request, const std::string& store_id, const std::string& log_public_key,
                   int64_t now_unix) {
  const auto& info = request.info();
  if (request.store_id() != store_id) return PermissionDeniedError("the request was made for another key store");
  if (!VerifySignature(kRequestIssuedDomain, request.digest(), request.issuer_signature(), log_public_key)) {
    return PermissionDeniedError("the request was not issued by this key store (make one with `veil request create`), or it was altered");
  }
  if (info.expires_unix - info.created_unix > kMaxRequestLifetimeSeconds || info.created_unix > now_unix + kClockSkewSeconds) {
    return PermissionDeniedError("the request's dates are not possible (created in the future, or valid for more than 366 days)");
  }
  return Status::Ok();
}

}  // namespace

Status KeyStore::RecordApproval(const RestoreRequest& request, const std::string& approver, int64_t now_unix) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  const auto& info = request.info();
  const Status issued = CheckIssued(request, store_id(), state_->header.log_public_key(), now_unix);
  Status verdict = NotFoundError("the request carries no approval by '" + approver + "'");
  for (const auto& a : request.approvals()) {
    if (a.approver != approver) continue;
    if (!issued.ok()) {
      verdict = issued;
      break;
    }
    auto* p = state_->FindPrincipal(approver);
    if (!p) verdict = PermissionDeniedError("'" + approver + "' is not a principal of this store");
    else if (p->revoked()) verdict = PermissionDeniedError("approver '" + approver + "' is revoked");
    else if (p->role() != proto::ROLE_APPROVER && approver != info.requester) verdict = PermissionDeniedError("'" + approver + "' is not an approver");
    else if (Status why = CheckApproval(request, a, p->public_key()); why.code() == StatusCode::kDeadlineExceeded)
      verdict = DeadlineExceededError("the request expired at " + IsoTimeUtc(info.expires_unix) + "; it can no longer be approved");
    else if (!why.ok())
      verdict = Status(why.code(), "approval by '" + approver + "' does not count: " + why.message());
    else verdict = Status::Ok();
  }
  // The requester's own signature is proof of who asked, never an approval: its own action, so that
  // a count of request-approved records is a count of approvals.
  // (Only on a request this store issued: a hand-made one names whatever requester it likes.)
  const bool requester = approver == info.requester && issued.ok();
  const std::string reason = verdict.ok() && requester ? "signed by its requester (not an approval)" : verdict.message();
  VEIL_RETURN_IF_ERROR(Audit({approver, requester ? AuditAction::kRequestSigned : AuditAction::kRequestApproved,
                              info.request_id_hex, {request.digest()},
                              verdict.ok() ? AuditOutcome::kSuccess : AuditOutcome::kDenied, reason,
                              info.keyring, info.key_version}));
  return verdict;
}

Status KeyStore::Deny(const RestoreRequest& request, const std::string& file_sha256, Status reason) {
  const auto& info = request.info();
  std::vector<std::string> digests{request.digest()};
  if (!file_sha256.empty()) digests.push_back(file_sha256);
  Status logged = Audit({"", AuditAction::kRestoreAuthorization, info.request_id_hex, digests,
                         AuditOutcome::kDenied, reason.message(), info.keyring, info.key_version});
  return logged.ok() ? reason : logged;
}

StatusOr<RestoreGrant> KeyStore::AuthorizeRestore(const RestoreRequest& request, int64_t now_unix,
                                                 const std::string& file_sha256) {
  VEIL_RETURN_IF_ERROR(RequireWritable());
  const auto& info = request.info();
  if (Status issued = CheckIssued(request, store_id(), state_->header.log_public_key(), now_unix); !issued.ok()) {
    return Deny(request, file_sha256, issued);
  }
  if (!file_sha256.empty() &&
      std::find(request.targets().begin(), request.targets().end(), file_sha256) == request.targets().end()) {
    return Deny(request, file_sha256, PermissionDeniedError("the request does not name this file (SHA-256 " + ToHex(file_sha256) + ")"));
  }
  if (now_unix >= info.expires_unix) {
    return Deny(request, file_sha256, DeadlineExceededError("the request expired at " + IsoTimeUtc(info.expires_unix)));
  }
  auto* ring = state_->FindKeyring(info.keyring);
  if (!ring) return Deny(request, file_sha256, NotFoundError("no keyring named '" + info.keyring + "'"));
  auto* requester = state_->FindPrincipal(info.requester);
  if (!requester || requester->revoked() ||
      (requester->role() != proto::ROLE_OPERATOR && requester->role() != proto::ROLE_ADMIN)) {
    return Deny(request, file_sha256, PermissionDeniedError("requester '" + info.requester + "' is not an unrevoked operator or admin"));
  }

  // Count valid approvals from distinct, unrevoked approvers other than the requester; the
  // requester's own signature (with their principal key) proves who asked, and is no approval.
  std::vector<std::string> valid;
  std::string ignored;
  bool requester_signed = false;
  auto ignore = [&](const std::string& who, const std::string& why) {
    ignored += (ignored.empty() ? "" : "; ") + who + ": " + why;
  };
  for (const auto& a : request.approvals()) {
    auto* p = state_->FindPrincipal(a.approver);
    if (!p) ignore(a.approver, "not a principal");
    else if (p->revoked()) ignore(a.approver, "revoked");
    else if (a.approver == info.requester) {
      if (Status why = CheckApproval(request, a, p->public_key()); why.ok()) requester_signed = true;
      else ignore(a.approver, "the requester's signature: " + why.message());
    }
    else if (p->role() != proto::ROLE_APPROVER) ignore(a.approver, "not an approver");
    else if (std::find(valid.begin(), valid.end(), a.approver) != valid.end()) ignore(a.approver, "duplicate");
    else if (Status why = CheckApproval(request, a, p->public_key()); !why.ok()) ignore(a.approver, why.message());
    else valid.push_back(a.approver);
  }
  const uint32_t needed = ring->policy().required_approvals();
  if (valid.size() < needed) {
    std::string msg = std::to_string(valid.size()) + " of " + std::to_string(needed) + " required approvals";
    if (!ignored.empty()) msg += " (ignored: " + ignored + ")";
    return Deny(request, file_sha256, PermissionDeniedError(msg));
  }
  if (ring->policy().requester_signs() && !requester_signed) {
    std::string msg = "keyring '" + info.keyring + "' needs the requester's own signature, and '" + info.requester +
                      "' has not signed the request (veil request approve REQUEST --principal-key with their key)";
    if (!ignored.empty()) msg += " (ignored: " + ignored + ")";
    return Deny(request, file_sha256, PermissionDeniedError(msg));
  }

  RestoreGrant grant;
  grant.keyring_ = info.keyring;
  grant.request_id_hex_ = info.request_id_hex;
  grant.targets_ = request.targets();
  for (const auto& v : ring->versions()) {
    if (info.key_version != 0 && v.version() != info.key_version) continue;
    if (v.status() != proto::KEY_STATUS_ENABLED) {
      if (info.key_version != 0) {
        return Deny(request, file_sha256, FailedPreconditionError("key " + KeyLabel(info.keyring, v.version()) + " is " +
                                                     KeyStatusName(static_cast<KeyStatus>(v.status()))));
      }
      grant.unavailable_.emplace_back(v.version(), static_cast<KeyStatus>(v.status()));
      continue;
    }
    auto it = state_->materials.find({info.keyring, v.version()});
    if (it != state_->materials.end()) grant.keys_.push_back(KeyHandle(info.keyring, v.version(), it->second.Clone()));
  }
  if (grant.keys_.empty()) {
    return Deny(request, file_sha256, info.key_version ? NotFoundError("keyring '" + info.keyring + "' has no version " +
                                                          std::to_string(info.key_version))
                                          : FailedPreconditionError("keyring '" + info.keyring + "' has no enabled key"));
  }
  std::string approvers;
  for (const auto& v : valid) approvers += (approvers.empty() ? "" : ", ") + v;
  std::vector<std::string> digests{request.digest()};
  digests.insert(digests.end(), request.targets().begin(), request.targets().end());
  // Fail closed: the grant leaves only after its record is durable.
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kRestoreAuthorization, info.request_id_hex, digests,
                              AuditOutcome::kGranted,
                              "requester " + info.requester + (requester_signed ? " (signed)" : " (not signed)") + "; case " +
                                  info.case_id + ": " + info.purpose + "; approved by " + approvers +
                                  (file_sha256.empty() ? "" : "; to restore the file of SHA-256 " + ToHex(file_sha256)),
                              info.keyring, info.key_version}));
  return grant;
}

Status KeyStore::Log(AuditAction action, AuditOutcome outcome, const std::string& target, const std::string& reason,
                     const std::vector<std::string>& digests, const std::string& keyring, uint32_t version) {
  // Changes to the store and recoveries are what the log holds the store file to, and requests,
  // approvals, signatures, authorizations and checkpoints are what the store verified itself: only
  // the store records them.
  const bool verified_by_store = action == AuditAction::kRequestCreated || action == AuditAction::kRequestApproved ||
                                 action == AuditAction::kRequestSigned || action == AuditAction::kRestoreAuthorization ||
                                 action == AuditAction::kCheckpointExported;
  if (internal::ChangesStore(action) || verified_by_store || action == AuditAction::kLogRecovered ||
      action == AuditAction::kStoreCreated) {
    return InvalidArgumentError(std::string("'") + AuditActionName(action) + "' is recorded by the key store itself");
  }
  // A restore is recorded as done only while the key it used is enabled: one that ran with the store
  // closed (a video) fails here when its key was disabled or destroyed meanwhile.
  if (action == AuditAction::kRestorePerformed && outcome == AuditOutcome::kSuccess) {
    if (keyring.empty()) return InvalidArgumentError("a restore's success record must name the keyring and version it used");
    const proto::Keyring* ring = state_->FindKeyring(keyring);
    if (!ring) return FailedPreconditionError("the key store has no keyring '" + keyring + "'");
    const proto::KeyVersion* v = FindVersion(*ring, version);
    if (!v) return FailedPreconditionError("keyring '" + keyring + "' has no version " + std::to_string(version));
    if (v->status() != proto::KEY_STATUS_ENABLED) {
      return FailedPreconditionError("key " + KeyLabel(keyring, version) + " was " +
                                     KeyStatusName(static_cast<KeyStatus>(v->status())) + " during the restore");
    }
  }
  return Audit({"", action, target, digests, outcome, reason, keyring, version});
}

StatusOr<std::string> KeyStore::ExportCheckpoint() {
  VEIL_RETURN_IF_ERROR(Audit({"", AuditAction::kCheckpointExported, "", {}, AuditOutcome::kSuccess, "", "", 0}));
  return state_->audit->MakeCheckpoint();
}

}  // namespace veil::keys
