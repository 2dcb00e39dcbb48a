#include <doctest/doctest.h>

#include "test_util.h"
#include "veil/keys/audit_log.h"
#include "veil/keys/fs.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::OpenRw;
using veil::testing::TempDir;
using veil::testing::TestKey;

namespace {

SecretBytes FlowKey(const KeyHandle& h, ScopeKind scope = ScopeKind::kDeployment, std::string_view id = "") {
  return h.DeriveSubkey(KeyPurpose::kIdentityFlow, scope, id);
}

}  // namespace

TEST_CASE("a new store has one enabled primary key and opens again with the same credential") {
  TempDir dir;
  std::string subkey_hex;
  {
    auto store = MakeStore(dir.path());
    auto info = store->Info();
    REQUIRE(info.keyrings.size() == 1);
    CHECK(info.keyrings[0].name == "default");
    CHECK(info.keyrings[0].primary_version == 1);
    CHECK(info.keyrings[0].required_approvals == 2);
    CHECK(info.keyrings[0].versions[0].status == KeyStatus::kEnabled);
    auto h = store->KeyForNewWork("default", "test");
    REQUIRE(h.ok());
    subkey_hex = ToHex(FlowKey(*h).view(SecretAccess::Get()));
  }
  auto again = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "admin");
  REQUIRE(again.ok());
  CHECK((*again)->Info().keyrings[0].primary_version == 1);
  again.value().reset();  // a reader's shared lock would keep the writer waiting
  auto rw = OpenRw(dir.path());
  auto h = rw->KeyForNewWork("default", "test");
  REQUIRE(h.ok());
  CHECK(ToHex(FlowKey(*h).view(SecretAccess::Get())) == subkey_hex);
}

TEST_CASE("creating a store where one exists fails with already-exists") {
  TempDir dir;
  MakeStore(dir.path());
  auto second = KeyStore::Create(dir.path(), TestKey(), veil::testing::FastKdf(), "admin", "default", 2);
  CHECK(second.status().code() == StatusCode::kAlreadyExists);
}

TEST_CASE("opening a folder without a store fails with not-found") {
  TempDir dir;
  CHECK(KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "x").status().code() == StatusCode::kNotFound);
}

TEST_CASE("a wrong passphrase is refused with unauthenticated and writes nothing") {
  TempDir dir;
  {
    auto store = KeyStore::Create(dir.path(), veil::testing::TestPassphrase("right"), veil::testing::FastKdf(), "admin",
                                  "default", 2);
    REQUIRE(store.ok());
    REQUIRE((*store)->Rotate("default").ok());  // so that a backup exists too
  }
  const std::string before = veil::testing::Slurp(dir / KeyStore::kStoreFile);
  const std::string log_before = veil::testing::Slurp(dir / KeyStore::kAuditFile);
  auto wrong = KeyStore::Open(dir.path(), veil::testing::TestPassphrase("wrong"), KeyStore::Access::kReadWrite, "x");
  CHECK(wrong.status().code() == StatusCode::kUnauthenticated);
  CHECK(wrong.status().message().find("wrong") != std::string::npos);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) == before);
  CHECK(veil::testing::Slurp(dir / KeyStore::kAuditFile) == log_before);
  auto right = KeyStore::Open(dir.path(), veil::testing::TestPassphrase("right"), KeyStore::Access::kReadOnly, "x");
  CHECK(right.ok());
}

TEST_CASE("a key file does not open a passphrase store and vice versa") {
  TempDir dir;
  MakeStore(dir.path());  // key-file store
  auto as_pass = KeyStore::Open(dir.path(), veil::testing::TestPassphrase("x"), KeyStore::Access::kReadOnly, "x");
  CHECK(as_pass.status().code() == StatusCode::kUnauthenticated);
  auto wrong_key = KeyStore::Open(dir.path(), TestKey(9), KeyStore::Access::kReadOnly, "x");
  CHECK(wrong_key.status().code() == StatusCode::kUnauthenticated);
}

TEST_CASE("key files must hold exactly 32 bytes") {
  TempDir dir;
  veil::testing::Spit(dir / "short.key", "0123456789");
  CHECK(Credential::FromKeyFile(dir / "short.key").status().code() == StatusCode::kInvalidArgument);
  REQUIRE(Credential::CreateKeyFile(dir / "new.key").ok());
  CHECK(Credential::FromKeyFile(dir / "new.key").ok());
  CHECK(Credential::CreateKeyFile(dir / "new.key").code() == StatusCode::kAlreadyExists);
}

TEST_CASE("rotation makes a new primary while old versions stay usable for old data") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto v1 = store->KeyForNewWork("default", "t");
  REQUIRE(v1.ok());
  auto v = store->Rotate("default");
  REQUIRE(v.ok());
  CHECK(*v == 2);
  auto v2 = store->KeyForNewWork("default", "t");
  REQUIRE(v2.ok());
  CHECK(v2->version() == 2);
  CHECK_FALSE(FlowKey(*v1).Equals(FlowKey(*v2)));
  auto info = store->Info();
  CHECK(info.keyrings[0].versions.size() == 2);
  CHECK(info.keyrings[0].versions[1].primary);
  CHECK(store->Rotate("nope").status().code() == StatusCode::kNotFound);
}

TEST_CASE("subkeys differ per purpose and per scope, and are stable for the same scope") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto h = store->KeyForNewWork("default", "t");
  REQUIRE(h.ok());
  auto flow_img_a = FlowKey(*h, ScopeKind::kImage, "a");
  CHECK(flow_img_a.Equals(FlowKey(*h, ScopeKind::kImage, "a")));
  CHECK_FALSE(flow_img_a.Equals(FlowKey(*h, ScopeKind::kImage, "b")));
  CHECK_FALSE(flow_img_a.Equals(FlowKey(*h, ScopeKind::kStream, "a")));
  CHECK_FALSE(flow_img_a.Equals(h->DeriveSubkey(KeyPurpose::kPayload, ScopeKind::kImage, "a")));
  CHECK(flow_img_a.size() == 32);
}

TEST_CASE("a disabled primary key refuses new work until it is enabled again") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
  CHECK(store->KeyForNewWork("default", "t").status().code() == StatusCode::kFailedPrecondition);
  CHECK(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).code() == StatusCode::kFailedPrecondition);
  REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kEnabled).ok());
  CHECK(store->KeyForNewWork("default", "t").ok());
}

TEST_CASE("a destroyed key is gone for good, also after reopening") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDestroyed).ok());
    CHECK(store->KeyForNewWork("default", "t").status().code() == StatusCode::kFailedPrecondition);
    CHECK(store->SetKeyStatus("default", 1, KeyStatus::kEnabled).code() == StatusCode::kFailedPrecondition);
  }
  auto store = OpenRw(dir.path());
  CHECK(store->Info().keyrings[0].versions[0].status == KeyStatus::kDestroyed);
  CHECK(store->KeyForNewWork("default", "t").status().code() == StatusCode::kFailedPrecondition);
  // The material is gone from the file, not only marked: the serialized store no longer holds it.
  CHECK(store->Rotate("default").ok());
}

TEST_CASE("a destroyed key does not come back from the store's backup") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->Rotate("default").ok());
    // What a crash in the middle of an earlier save leaves behind holds older generations too.
    veil::testing::Spit(dir / (std::string(KeyStore::kStoreFile) + ".tmp.123.456"), "an older generation");
    veil::testing::Spit(dir / (std::string(KeyStore::kBackupFile) + ".tmp"), "an older generation");
    REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDestroyed).ok());
  }
  CHECK_FALSE(std::filesystem::exists(dir / (std::string(KeyStore::kStoreFile) + ".tmp.123.456")));
  CHECK_FALSE(std::filesystem::exists(dir / (std::string(KeyStore::kBackupFile) + ".tmp")));
  // Whoever replaces the store file with its backup finds the key destroyed there too.
  CHECK(veil::testing::Slurp(dir / KeyStore::kBackupFile) == veil::testing::Slurp(dir / KeyStore::kStoreFile));
  veil::testing::DamageStoreFile(dir.path());
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin").ok());
  auto store = OpenRw(dir.path());
  CHECK(store->Info().keyrings[0].versions[0].status == KeyStatus::kDestroyed);
  CHECK(store->Info().keyrings[0].versions[1].status == KeyStatus::kEnabled);
}

TEST_CASE("recovery from the backup is refused while the store file opens") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
  }
  // The backup is the generation before the key was disabled: recovering it would undo that.
  Status st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(st.code() == StatusCode::kFailedPrecondition);
  auto store = OpenRw(dir.path());
  CHECK(store->Info().keyrings[0].versions[0].status == KeyStatus::kDisabled);
}

TEST_CASE("a change that cannot be saved is logged as failed after its record, and the store is as it was") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    // A folder where the backup's temporary link goes: the save fails after the change was logged.
    std::filesystem::create_directory(dir / (std::string(KeyStore::kBackupFile) + ".tmp"));
    CHECK(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).code() == StatusCode::kIoError);
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  REQUIRE(entries.size() >= 2);
  const AuditEvent& logged = entries[entries.size() - 2].event;
  const AuditEvent& failed = entries.back().event;
  CHECK(logged.action == AuditAction::kKeyDisabled);
  CHECK(logged.outcome == AuditOutcome::kSuccess);
  CHECK(failed.action == AuditAction::kKeyDisabled);
  CHECK(failed.outcome == AuditOutcome::kFailed);
  CHECK(failed.reason.find("save failed") == 0);
  std::filesystem::remove(dir / (std::string(KeyStore::kBackupFile) + ".tmp"));
  auto store = OpenRw(dir.path());
  CHECK(store->Info().keyrings[0].versions[0].status == KeyStatus::kEnabled);
  CHECK(store->notices().empty());  // the failed record accounts for the change
}

TEST_CASE("an audit log cut back to before the store's last change refuses the store") {
  TempDir dir;
  const std::string log = dir / KeyStore::kAuditFile;
  uintmax_t before_rotation = 0;
  {
    auto store = MakeStore(dir.path());
    before_rotation = std::filesystem::file_size(log);
    REQUIRE(store->Rotate("default").ok());
  }
  // Cut at a record boundary: the shorter log still verifies on its own (only a checkpoint held
  // elsewhere tells), but the store knows how many records it had seen when it was saved.
  std::filesystem::resize_file(log, before_rotation);
  REQUIRE(VerifyAuditLog(log, {}, nullptr).ok());
  auto opened = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("its head file") != std::string::npos);
  // Without the head file (removed with the cut), the store's own count still refuses the log, and
  // the refused open writes nothing: neither a record nor a head file.
  std::filesystem::remove(dir / KeyStore::kAuditHeadFile);
  opened = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("was saved after record") != std::string::npos);
  CHECK(std::filesystem::file_size(log) == before_rotation);
  CHECK_FALSE(std::filesystem::exists(dir / KeyStore::kAuditHeadFile));
}

TEST_CASE("a store file put back from before its last change opens with that change logged as failed and reported") {
  TempDir dir;
  const std::string before_revocation = veil::testing::MakeStoreThenAddAndRevokeBob(dir.path()).before_revoked;
  REQUIRE(OpenRw(dir.path())->Log(AuditAction::kRestorePerformed, AuditOutcome::kSuccess, "photo.png", "", {}, "default", 1).ok());
  // What a crash between the revocation's record and its save leaves (or a one-step rollback).
  veil::testing::Spit(dir / KeyStore::kStoreFile, before_revocation);
  {
    auto store = OpenRw(dir.path());
    CHECK_FALSE(store->Info().principals[0].revoked);
    REQUIRE(store->notices().size() == 1);
    CHECK(store->notices()[0].find("principal-revoked bob") != std::string::npos);
    std::vector<AuditEntry> entries;
    REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
    CHECK(entries.back().event.action == AuditAction::kPrincipalRevoked);
    CHECK(entries.back().event.outcome == AuditOutcome::kFailed);
    CHECK(entries.back().event.reason.find("interrupted") != std::string::npos);
  }
  // Logged once: the next open finds the change accounted for.
  auto again = OpenRw(dir.path());
  CHECK(again->notices().empty());
  CHECK(again->RevokePrincipal("bob").ok());
}

TEST_CASE("store files put back one generation at a time are refused from the second step on") {
  TempDir dir;
  std::vector<std::string> generations;
  {
    auto store = MakeStore(dir.path());
    for (int i = 0; i < 3; ++i) {
      generations.push_back(veil::testing::Slurp(dir / KeyStore::kStoreFile));
      REQUIRE(store->Rotate("default").ok());
    }
  }
  veil::testing::Spit(dir / KeyStore::kStoreFile, generations[2]);
  CHECK(OpenRw(dir.path())->notices().size() == 1);  // the last rotation: an interrupted save as far as anyone can tell
  veil::testing::Spit(dir / KeyStore::kStoreFile, generations[1]);
  auto opened = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("key-rotated default v3") != std::string::npos);
}

TEST_CASE("only the store records changes to itself, recoveries, and the requests, approvals and grants it verified") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  CHECK(store->Log(AuditAction::kPrincipalRevoked, AuditOutcome::kFailed, "bob", "").code() == StatusCode::kInvalidArgument);
  for (AuditAction verified : {AuditAction::kRequestCreated, AuditAction::kRequestApproved, AuditAction::kRequestSigned,
                               AuditAction::kRestoreAuthorization, AuditAction::kCheckpointExported}) {
    CAPTURE(AuditActionName(verified));
    CHECK(store->Log(verified, AuditOutcome::kSuccess, "req", "forged").code() == StatusCode::kInvalidArgument);
  }
  CHECK(store->Log(AuditAction::kLogRecovered, AuditOutcome::kSuccess, KeyStore::kStoreFile, "").code() ==
        StatusCode::kInvalidArgument);
  CHECK(store->Log(AuditAction::kRestorePerformed, AuditOutcome::kSuccess, "photo.png", "", {}, "default", 1).ok());
}

TEST_CASE("a restore is recorded as done only while the key it used is enabled") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  REQUIRE(store->Rotate("default").ok());
  REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
  auto records = [&] {
    auto summary = VerifyAuditLog(store->audit_path(), {});
    REQUIRE(summary.ok());
    return summary->record_count;
  };
  const uint64_t before = records();
  auto success = [&](const std::string& keyring, uint32_t version) {
    return store->Log(AuditAction::kRestorePerformed, AuditOutcome::kSuccess, "photo.png", "", {}, keyring, version);
  };
  Status disabled = success("default", 1);
  CHECK(disabled.code() == StatusCode::kFailedPrecondition);
  CHECK(disabled.message().find("was disabled during the restore") != std::string::npos);
  CHECK(success("default", 7).code() == StatusCode::kFailedPrecondition);
  CHECK(success("", 0).code() == StatusCode::kInvalidArgument);
  CHECK(records() == before);  // nothing logged for any of them
  // The failure itself is logged, whatever the key's state; a success under the enabled version too.
  CHECK(store->Log(AuditAction::kRestorePerformed, AuditOutcome::kFailed, "photo.png", "key disabled", {}, "default", 1).ok());
  CHECK(success("default", 2).ok());
  CHECK(records() == before + 2);
}

TEST_CASE("a store file older than two of its logged changes refuses to open for changes") {
  TempDir dir;
  std::string old_file;
  {
    auto store = MakeStore(dir.path());
    old_file = veil::testing::Slurp(dir / KeyStore::kStoreFile);
    REQUIRE(store->AddPrincipal("bob", Role::kApprover, PrincipalKey::Generate("bob").public_key()).ok());
    REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
  }
  const uintmax_t log_size = std::filesystem::file_size(dir / KeyStore::kAuditFile);
  veil::testing::Spit(dir / KeyStore::kStoreFile, old_file);
  auto opened = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x");
  REQUIRE(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("principal-added bob") != std::string::npos);
  CHECK(opened.status().message().find("key-disabled default v1") != std::string::npos);
  CHECK(opened.status().message().find("older store file was put back") != std::string::npos);
  CHECK(std::filesystem::file_size(dir / KeyStore::kAuditFile) == log_size);  // refused before any record
  // Read-only opens still show what the file holds, for the investigation.
  CHECK(KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "x").ok());
}

TEST_CASE("an actor name that is not valid UTF-8 or holds control characters is logged cleaned, and the log stays readable") {
  TempDir dir;
  { MakeStore(dir.path()); }
  {
    auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "mal\xff\xc0\x80lory\n\x1b[2K");
    REQUIRE(store.ok());
    REQUIRE((*store)->Rotate("default").ok());
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  CHECK(entries.back().event.actor == "mal???lory??[2K");
}

TEST_CASE("C1 controls, bidirectional controls and line separators in logged text become '?'") {
  TempDir dir;
  { MakeStore(dir.path()); }
  {
    // U+009B (CSI on an 8-bit terminal), U+202E (right-to-left override), U+2066 (isolate),
    // U+2028 (line separator); other text stays.
    auto store = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite,
                                "a\u009b31mb\u202ec\u2066d\u2028e \u00e9t\u00e9");
    REQUIRE(store.ok());
    REQUIRE((*store)->Rotate("default").ok());
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  CHECK(entries.back().event.actor == "a?31mb?c?d?e \u00e9t\u00e9");
}

TEST_CASE("keyring and principal names are validated") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  CHECK(store->CreateKeyring("bad name", 2).code() == StatusCode::kInvalidArgument);
  CHECK(store->CreateKeyring("ok-name", 0).code() == StatusCode::kInvalidArgument);
  CHECK(store->CreateKeyring("default", 2).code() == StatusCode::kAlreadyExists);
  CHECK(store->AddPrincipal("x/y", Role::kApprover, std::string(32, 'a')).code() == StatusCode::kInvalidArgument);
  CHECK(store->AddPrincipal("x", Role::kApprover, "short").code() == StatusCode::kInvalidArgument);
}

TEST_CASE("principals are added, listed and revoked; a key is registered once") {
  TempDir dir;
  auto store = MakeStore(dir.path());
  auto alice = PrincipalKey::Generate("alice");
  REQUIRE(store->AddPrincipal("alice", Role::kApprover, alice.public_key()).ok());
  CHECK(store->AddPrincipal("alice", Role::kApprover, PrincipalKey::Generate("a").public_key()).code() ==
        StatusCode::kAlreadyExists);
  CHECK(store->AddPrincipal("alias", Role::kApprover, alice.public_key()).code() == StatusCode::kAlreadyExists);
  REQUIRE(store->RevokePrincipal("alice").ok());
  CHECK(store->RevokePrincipal("alice").code() == StatusCode::kFailedPrecondition);
  CHECK(store->RevokePrincipal("bob").code() == StatusCode::kNotFound);
  auto info = store->Info();
  REQUIRE(info.principals.size() == 1);
  CHECK(info.principals[0].revoked);
  CHECK(info.principals[0].public_key_hex == ToHex(alice.public_key()));
}

TEST_CASE("a principal key file opens only with its passphrase") {
  TempDir dir;
  auto key = PrincipalKey::Generate("bob");
  REQUIRE(key.Save(dir / "bob.key", veil::testing::TestPassphrase("pw"), veil::testing::FastKdf()).ok());
  auto back = PrincipalKey::Load(dir / "bob.key", veil::testing::TestPassphrase("pw"));
  REQUIRE(back.ok());
  CHECK(back->name() == "bob");
  CHECK(back->public_key() == key.public_key());
  CHECK(PrincipalKey::Load(dir / "bob.key", veil::testing::TestPassphrase("nope")).status().code() ==
        StatusCode::kUnauthenticated);
  CHECK(key.Save(dir / "bob.key", veil::testing::TestPassphrase("pw"), veil::testing::FastKdf()).code() ==
        StatusCode::kAlreadyExists);
  std::string sig = back->Sign("d", "m");
  CHECK(VerifySignature("d", "m", sig, key.public_key()));
  CHECK_FALSE(VerifySignature("d", "m2", sig, key.public_key()));
}

TEST_CASE("a second writer waits for the first and reports a busy store when it gives up") {
  TempDir dir;
  auto first = MakeStore(dir.path());
  auto lock = FileLock::Acquire(dir / KeyStore::kLockFile, FileLock::Mode::kExclusive, 50);
  CHECK(lock.status().code() == StatusCode::kIoError);
  CHECK(lock.status().message().find("locked by another") != std::string::npos);
  first.reset();
  CHECK(FileLock::Acquire(dir / KeyStore::kLockFile, FileLock::Mode::kExclusive, 50).ok());
}

TEST_CASE("a read-only store refuses changes") {
  TempDir dir;
  MakeStore(dir.path());
  auto ro = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "x");
  REQUIRE(ro.ok());
  CHECK((*ro)->Rotate("default").status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("every change is in the audit log, which verifies") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->Rotate("default").ok());
    REQUIRE(store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
    REQUIRE(store->AddPrincipal("a", Role::kAuditor, PrincipalKey::Generate("a").public_key()).ok());
  }
  std::vector<AuditEntry> entries;
  auto sum = VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries);
  REQUIRE(sum.ok());
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].event.action == AuditAction::kStoreCreated);
  CHECK(entries[1].event.action == AuditAction::kKeyringCreated);
  CHECK(entries[2].event.action == AuditAction::kKeyRotated);
  CHECK(entries[2].event.key_version == 2);
  CHECK(entries[3].event.action == AuditAction::kKeyDisabled);
  CHECK(entries[4].event.action == AuditAction::kPrincipalAdded);
  CHECK(entries[4].event.actor == "admin");
}

TEST_CASE("a damaged store file is reported as such and recovered from its backup") {
  TempDir dir;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->Rotate("default").ok());
  }
  veil::testing::DamageStoreFile(dir.path());
  auto damaged = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadOnly, "x");
  CHECK(damaged.status().code() == StatusCode::kDataLoss);
  CHECK(damaged.status().message().find("veil keys recover") != std::string::npos);
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin").ok());
  auto store = OpenRw(dir.path());
  // The backup is the last-known-good state before the rotation; the recovery records that it
  // undoes the rotation, so the store opens without a warning.
  CHECK(store->Info().keyrings[0].versions.size() == 1);
  CHECK(store->notices().empty());
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  REQUIRE(entries.size() >= 2);
  CHECK(entries[entries.size() - 2].event.action == AuditAction::kKeyRotated);
  CHECK(entries[entries.size() - 2].event.outcome == AuditOutcome::kFailed);
  CHECK(entries.back().event.action == AuditAction::kLogRecovered);
  CHECK(entries.back().event.reason.find("lost: record") != std::string::npos);
  CHECK(entries.back().event.reason.find("key-rotated default v2") != std::string::npos);
}

TEST_CASE("a store file swapped for its backup and then a recovery undo at most two changes, each on record") {
  TempDir dir;
  const auto [before_added, before_revoked] = veil::testing::MakeStoreThenAddAndRevokeBob(dir.path());
  REQUIRE(OpenRw(dir.path())->Rotate("default").ok());
  const auto damage_and_leave_as_backup = [&](const std::string& backup) {
    veil::testing::Spit(dir / KeyStore::kBackupFile, backup);
    veil::testing::DamageStoreFile(dir.path());
  };
  // Step 1: the backup (before the rotation) over the store file: an interrupted save, as far as anyone can tell.
  veil::testing::Spit(dir / KeyStore::kStoreFile, veil::testing::Slurp(dir / KeyStore::kBackupFile));
  CHECK(OpenRw(dir.path())->notices().size() == 1);
  // Step 2: a recovery from an older backup, which lacks only the revocation: undone, on record.
  damage_and_leave_as_backup(before_revoked);
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin").ok());
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  int undone = 0;
  for (const auto& e : entries) undone += e.event.outcome == AuditOutcome::kFailed;
  CHECK(undone == 2);  // the rotation (by the open) and the revocation (by the recovery)
  // Step 3: a backup never gets older than the last recovery: refused, nothing written.
  damage_and_leave_as_backup(before_added);
  const std::string damaged = veil::testing::Slurp(dir / KeyStore::kStoreFile);
  const uintmax_t log_size = std::filesystem::file_size(dir / KeyStore::kAuditFile);
  Status st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("a recovery came after it") != std::string::npos);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) == damaged);
  CHECK(std::filesystem::file_size(dir / KeyStore::kAuditFile) == log_size);
}

TEST_CASE("recovery never replaces a store file that cannot be read but is not damaged") {
  TempDir dir;
  { MakeStore(dir.path()); }
  std::filesystem::rename(dir / KeyStore::kStoreFile, dir / "aside");
  std::filesystem::create_directory(dir / KeyStore::kStoreFile);  // not a file that was damaged
  RecoverOptions accept;
  accept.accept_loss = true;
  Status st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin", accept);
  CHECK_FALSE(st.ok());
  CHECK(st.code() != StatusCode::kDataLoss);
  CHECK(std::filesystem::is_directory(dir / KeyStore::kStoreFile));
}

TEST_CASE("recovery refuses a backup saved after records that the audit log no longer holds") {
  TempDir dir;
  uintmax_t short_log = 0;
  {
    auto store = MakeStore(dir.path());
    REQUIRE(store->Rotate("default").ok());
    short_log = std::filesystem::file_size(dir / KeyStore::kAuditFile);
    REQUIRE(store->Rotate("default").ok());
    REQUIRE(store->Rotate("default").ok());  // the backup is saved after the second rotation's record
  }
  std::filesystem::resize_file(dir / KeyStore::kAuditFile, short_log);
  const std::string bytes = veil::testing::DamageStoreFile(dir.path());
  Status st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("its head file") != std::string::npos);  // the head file saw the cut first
  // Without the head file, the backup's own count of records still tells; nothing is written.
  std::filesystem::remove(dir / KeyStore::kAuditHeadFile);
  st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("was saved after record") != std::string::npos);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) == bytes);
  CHECK(std::filesystem::file_size(dir / KeyStore::kAuditFile) == short_log);
  CHECK_FALSE(std::filesystem::exists(dir / KeyStore::kAuditHeadFile));  // a refused recovery logs nothing
}

TEST_CASE("a store file older than its log is kept with --accept-loss, every change it lacks logged as lost") {
  TempDir dir;
  std::string old_file;
  {
    auto store = MakeStore(dir.path());
    old_file = veil::testing::Slurp(dir / KeyStore::kStoreFile);
    REQUIRE(store->Rotate("default").ok());
    REQUIRE(store->Rotate("default").ok());
  }
  veil::testing::Spit(dir / KeyStore::kStoreFile, old_file);
  REQUIRE(KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x").status().code() ==
          StatusCode::kDataLoss);
  Status refused = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(refused.code() == StatusCode::kFailedPrecondition);
  CHECK(refused.message().find("key-rotated default v2") != std::string::npos);
  RecoverOptions accept;
  accept.accept_loss = true;
  // The backup (before the second rotation) lacks less: it must be put in place first.
  Status newer_backup = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin", accept);
  CHECK(newer_backup.code() == StatusCode::kFailedPrecondition);
  CHECK(newer_backup.message().find("lacks fewer changes") != std::string::npos);
  std::filesystem::remove(dir / KeyStore::kBackupFile);  // no newer file anywhere
  std::vector<std::string> lost;
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin", accept, &lost).ok());
  CHECK(lost.size() == 2);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) == old_file);  // kept as it is
  {
    auto store = OpenRw(dir.path());
    CHECK(store->notices().empty());
    CHECK(store->Info().keyrings[0].versions.size() == 1);
  }
  std::vector<AuditEntry> entries;
  REQUIRE(VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries).ok());
  int logged_lost = 0;
  for (const auto& e : entries) {
    logged_lost += e.event.outcome == AuditOutcome::kFailed && e.event.reason.find("accepted as lost") == 0;
  }
  CHECK(logged_lost == 2);
  CHECK(entries.back().event.action == AuditAction::kLogRecovered);
  // With nothing lost there is nothing to accept.
  CHECK(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin", accept).code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("recovery from a backup older than the generation before the store file's is refused") {
  TempDir dir;
  const std::string old_file = veil::testing::MakeStoreThenAddAndRevokeBob(dir.path()).before_added;
  // Someone damages the store file and leaves an older generation as its backup.
  veil::testing::Spit(dir / KeyStore::kBackupFile, old_file);
  const std::string bytes = veil::testing::DamageStoreFile(dir.path());
  const uintmax_t log_size = std::filesystem::file_size(dir / KeyStore::kAuditFile);
  Status st = KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin");
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("principal-added bob") != std::string::npos);
  CHECK(st.message().find("principal-revoked bob") != std::string::npos);
  CHECK(std::filesystem::file_size(dir / KeyStore::kAuditFile) == log_size);
  CHECK(veil::testing::Slurp(dir / KeyStore::kStoreFile) == bytes);
  // The credential holder may still take it, the two changes logged as lost.
  RecoverOptions accept;
  accept.accept_loss = true;
  std::vector<std::string> lost;
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin", accept, &lost).ok());
  REQUIRE(lost.size() == 2);
  CHECK(lost[0].find("principal-added bob") != std::string::npos);
  auto store = OpenRw(dir.path());
  CHECK(store->notices().empty());
  CHECK(store->Info().principals.empty());
}

TEST_CASE("a store file from before a recovery, put back, is refused") {
  TempDir dir;
  const std::string old_file = veil::testing::MakeStoreThenAddAndRevokeBob(dir.path()).before_added;
  veil::testing::DamageStoreFile(dir.path());
  REQUIRE(KeyStore::RecoverFromBackup(dir.path(), TestKey(), "admin").ok());  // undoes the revocation, on record
  CHECK_FALSE(OpenRw(dir.path())->Info().principals[0].revoked);
  veil::testing::Spit(dir / KeyStore::kStoreFile, old_file);  // from before bob was added
  auto opened = KeyStore::Open(dir.path(), TestKey(), KeyStore::Access::kReadWrite, "x");
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("principal-added bob") != std::string::npos);
}
