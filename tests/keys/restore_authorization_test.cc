#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "test_util.h"
#include "veil/keys/audit_log.h"
#include "veil/keys/fs.h"
#include "veil/keys/restore_request.h"
#include "veil/proto/keystore.pb.h"
#include "veil/proto/request.pb.h"

using namespace veil;
using namespace veil::keys;
using veil::testing::MakeStore;
using veil::testing::TempDir;

namespace {

constexpr int64_t kNow = 1'900'000'000;

// A store with approvers alice, bob, carol (2 of 3 needed) and operator olivia.
struct Fixture {
  TempDir dir;
  std::unique_ptr<KeyStore> store = MakeStore(dir.path(), 2);
  PrincipalKey alice = PrincipalKey::Generate("alice");
  PrincipalKey bob = PrincipalKey::Generate("bob");
  PrincipalKey carol = PrincipalKey::Generate("carol");
  PrincipalKey olivia = PrincipalKey::Generate("olivia");

  Fixture() {
    for (auto* p : {&alice, &bob, &carol}) REQUIRE(store->AddPrincipal(p->name(), Role::kApprover, p->public_key()).ok());
    REQUIRE(store->AddPrincipal("olivia", Role::kOperator, olivia.public_key()).ok());
  }

  RestoreRequest Request(uint32_t key_version = 0, int64_t lifetime = 3600) {
    RestoreRequestSpec spec;
    spec.keyring = "default";
    spec.key_version = key_version;
    spec.targets = {Sha256("image one"), Sha256("image two")};
    spec.case_id = "CASE-1";
    spec.purpose = "court order";
    spec.requester = "olivia";
    spec.expires_unix = kNow + lifetime;
    auto r = store->CreateRequest(spec, kNow);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return std::move(r.value());
  }

  AuditEntry LastRecord() {
    std::vector<AuditEntry> entries;
    auto sum = VerifyAuditLog(dir / KeyStore::kAuditFile, {}, &entries);
    REQUIRE(sum.ok());
    return entries.back();
  }
};

// The request file with one more approval entry, as an attacker could append it.
RestoreRequest WithApproval(const RestoreRequest& request, const std::string& approver, const std::string& signature) {
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(request.Serialize()));
  auto* a = file.add_approvals();
  a->set_approver(approver);
  a->set_signature(signature);
  auto parsed = RestoreRequest::Parse(file.SerializeAsString());
  REQUIRE(parsed.ok());
  return std::move(parsed.value());
}

}  // namespace

TEST_CASE("restore is granted with two valid approvals of three, and the grant is logged") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow + 10);
  REQUIRE_MESSAGE(grant.ok(), grant.status().ToString());
  CHECK(grant->Covers(Sha256("image one")));
  CHECK_FALSE(grant->Covers(Sha256("image three")));
  CHECK(grant->Key("default", 1).ok());
  CHECK(grant->Key("default", 7).status().code() == StatusCode::kPermissionDenied);
  auto other_keyring = grant->Key("other", 1);
  CHECK(other_keyring.status().code() == StatusCode::kPermissionDenied);
  CHECK(other_keyring.status().message().find("releases keyring 'default'; this was sealed under 'other'") !=
        std::string::npos);
  auto rec = f.LastRecord();
  CHECK(rec.event.action == AuditAction::kRestoreAuthorization);
  CHECK(rec.event.outcome == AuditOutcome::kGranted);
  CHECK(rec.event.reason.find("alice, bob") != std::string::npos);
  CHECK(rec.event.target_digests[0] == req.digest());
}

TEST_CASE("the released key is the one used for new work") {
  Fixture f;
  auto work = f.store->KeyForNewWork("default", "t");
  REQUIRE(work.ok());
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.carol, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow);
  REQUIRE(grant.ok());
  auto key = grant->Key("default", 1);
  REQUIRE(key.ok());
  CHECK(key->DeriveSubkey(KeyPurpose::kIdentityFlow, ScopeKind::kDeployment, "")
            .Equals(work->DeriveSubkey(KeyPurpose::kIdentityFlow, ScopeKind::kDeployment, "")));
}

TEST_CASE("a key check is fixed by key and context, differs between contexts and between stores' keys") {
  Fixture f;
  auto work = f.store->KeyForNewWork("default", "t");
  REQUIRE(work.ok());
  const std::string check = work->KeyCheck("manifest one");
  CHECK(check.size() == 16);
  CHECK(check == work->Clone().KeyCheck("manifest one"));
  // Two manifests of one key cannot be linked through their checks.
  CHECK(work->KeyCheck("manifest two") != check);
  CHECK(work->KeyCheck("") != check);
  // Not a subkey in disguise: no purpose's subkey starts with it.
  for (KeyPurpose p : {KeyPurpose::kIdentityFlow, KeyPurpose::kPayload, KeyPurpose::kManifest, KeyPurpose::kKeyCheck}) {
    const SecretBytes sub = work->DeriveSubkey(p, ScopeKind::kDeployment, "manifest one");
    CHECK(std::string(sub.view(SecretAccess::Get()).substr(0, 16)) != check);
  }
  // Another store's key under the same keyring name and version has another check.
  TempDir other_dir;
  auto other = MakeStore(other_dir.path());
  auto other_key = other->KeyForNewWork("default", "t");
  REQUIRE(other_key.ok());
  CHECK(other_key->version() == work->version());
  CHECK(other_key->KeyCheck("manifest one") != check);
}

TEST_CASE("restore fails with permission denied when approvals are missing, and the denial is logged") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow, Sha256("image one"));
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("1 of 2") != std::string::npos);
  auto rec = f.LastRecord();
  CHECK(rec.event.outcome == AuditOutcome::kDenied);
  CHECK(rec.event.reason.find("1 of 2") != std::string::npos);
  // The record names the request and the file that was to be restored.
  CHECK(rec.event.target_digests == std::vector<std::string>{req.digest(), Sha256("image one")});
}

TEST_CASE("a forged approver signature does not count") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  // Mallory signs with her own key under bob's name.
  auto mallory_as_bob = PrincipalKey::Generate("bob");
  req.Approve(mallory_as_bob, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: bad signature") != std::string::npos);
  CHECK(f.store->RecordApproval(req, "bob", kNow).code() == StatusCode::kPermissionDenied);
}

TEST_CASE("a request stuffed with long forged approvals is denied, and the denial is on record") {
  Fixture f;
  auto req = f.Request();
  // 64 approvals (the most a request file holds) under names of 1,000 characters: the denial's
  // reason lists them all, which is more than a record holds; it is cut, not left unwritten.
  for (int i = 0; i < 64; ++i) req = WithApproval(req, std::string(1000, 'm') + std::to_string(i), std::string(64, 'x'));
  auto grant = f.store->AuthorizeRestore(req, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  auto rec = f.LastRecord();
  CHECK(rec.event.action == AuditAction::kRestoreAuthorization);
  CHECK(rec.event.outcome == AuditOutcome::kDenied);
  CHECK(rec.event.reason.find("0 of 2 required approvals") == 0);
  CHECK(rec.event.reason.find("bytes cut]") != std::string::npos);
}

TEST_CASE("a request naming the most targets a request holds is granted, on record with every target") {
  Fixture f;
  RestoreRequestSpec spec;
  spec.keyring = "default";
  for (int i = 0; i < 4096; ++i) spec.targets.push_back(Sha256("image " + std::to_string(i)));
  spec.case_id = "CASE-2";
  spec.purpose = "a whole archive";
  spec.requester = "olivia";
  spec.expires_unix = kNow + 3600;
  auto req = f.store->CreateRequest(spec, kNow);
  REQUIRE(req.ok());
  req->Approve(f.alice, kNow);
  req->Approve(f.bob, kNow);
  auto grant = f.store->AuthorizeRestore(*req, kNow);
  REQUIRE_MESSAGE(grant.ok(), grant.status().ToString());
  auto rec = f.LastRecord();
  CHECK(rec.event.outcome == AuditOutcome::kGranted);
  CHECK(rec.event.target_digests.size() == 4097);  // the request's digest and every target
}

TEST_CASE("request fields with control characters are refused") {
  Fixture f;
  RestoreRequestSpec spec;
  spec.keyring = "default";
  spec.targets = {Sha256("image one")};
  spec.case_id = "CASE-3";
  spec.purpose = "court order\n  expires: never\x1b[8m";
  spec.requester = "olivia";
  spec.expires_unix = kNow + 3600;
  auto req = f.store->CreateRequest(spec, kNow);
  CHECK(req.status().code() == StatusCode::kInvalidArgument);
  CHECK(req.status().message().find("control character") != std::string::npos);
  spec.purpose = "court order \u202e321";  // a right-to-left override
  CHECK(f.store->CreateRequest(spec, kNow).status().code() == StatusCode::kInvalidArgument);
  spec.purpose = "court order \u00e9t\u00e9 \u65e5";  // other text is fine
  CHECK(f.store->CreateRequest(spec, kNow).ok());
  // An approval entry added to a file by hand under such a name makes the file unreadable.
  auto good = f.Request();
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(good.Serialize()));
  auto* a = file.add_approvals();
  a->set_approver("bob\r\x1b[2K");
  a->set_signature(std::string(64, 'x'));
  CHECK(RestoreRequest::Parse(file.SerializeAsString()).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("an online approval of a request this store did not issue is refused and on record as denied") {
  Fixture f;
  Fixture other;  // another store, with the same principals' names
  other.bob = PrincipalKey::Generate("bob");
  auto foreign = other.Request();
  foreign.Approve(f.bob, kNow);
  const Status refused = f.store->RecordApproval(foreign, "bob", kNow);
  CHECK(refused.code() == StatusCode::kPermissionDenied);
  CHECK(refused.message().find("another key store") != std::string::npos);
  auto rec = f.LastRecord();
  CHECK(rec.event.action == AuditAction::kRequestApproved);
  CHECK(rec.event.outcome == AuditOutcome::kDenied);
  // A request file made by hand under this store's id (no store's signature), naming a keyring of
  // 1,000 characters: refused the same way, and the record's keyring is bounded like its names.
  auto mine = f.Request();
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(mine.Serialize()));
  proto::RestoreRequest body;
  REQUIRE(body.ParseFromString(file.request()));
  body.set_keyring(std::string(1000, 'k'));
  file.set_request(body.SerializeAsString());
  auto forged = RestoreRequest::Parse(file.SerializeAsString());
  REQUIRE(forged.ok());
  forged->Approve(f.bob, kNow);
  CHECK(f.store->RecordApproval(*forged, "bob", kNow).code() == StatusCode::kPermissionDenied);
  rec = f.LastRecord();
  CHECK(rec.event.outcome == AuditOutcome::kDenied);
  CHECK(rec.event.reason.find("not issued by this key store") != std::string::npos);
  CHECK(rec.event.keyring.size() <= 256);
  CHECK(rec.event.keyring.find("bytes cut]") != std::string::npos);
  // The store's own request is recorded as approved.
  mine.Approve(f.bob, kNow);
  CHECK(f.store->RecordApproval(mine, "bob", kNow).ok());
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kSuccess);
}

TEST_CASE("a signature made for another request does not count") {
  Fixture f;
  auto req = f.Request();
  auto other = f.Request();
  other.Approve(f.bob, kNow);
  req.Approve(f.alice, kNow);
  auto grant = f.store->AuthorizeRestore(WithApproval(req, "bob", other.approvals()[0].signature), kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: bad signature") != std::string::npos);
}

TEST_CASE("duplicated approvals by one approver count once") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  auto twice = WithApproval(req, "alice", req.approvals()[0].signature);
  REQUIRE(twice.approvals().size() == 2);
  auto grant = f.store->AuthorizeRestore(twice, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("alice: duplicate") != std::string::npos);
}

TEST_CASE("an expired request is refused with deadline exceeded") {
  Fixture f;
  auto req = f.Request(0, 60);
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  CHECK(f.store->AuthorizeRestore(req, kNow + 59).ok());
  auto late = f.store->AuthorizeRestore(req, kNow + 60);
  CHECK(late.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kDenied);
}

// The request file with approval `index`'s time set to `signed_unix`, as an attacker could edit it.
RestoreRequest WithApprovalTime(const RestoreRequest& request, int index, int64_t signed_unix) {
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(request.Serialize()));
  file.mutable_approvals(index)->set_signed_unix(signed_unix);
  auto parsed = RestoreRequest::Parse(file.SerializeAsString());
  REQUIRE(parsed.ok());
  return std::move(parsed.value());
}

TEST_CASE("restore of a file the request does not name is denied, and the denial and the grant name the file") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow + 1, Sha256("image three"));
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("does not name this file") != std::string::npos);
  const AuditEntry last = f.LastRecord();
  CHECK(last.event.outcome == AuditOutcome::kDenied);
  CHECK(std::find(last.event.target_digests.begin(), last.event.target_digests.end(), Sha256("image three")) != last.event.target_digests.end());
  CHECK(f.store->AuthorizeRestore(req, kNow + 1, Sha256("image two")).ok());
  // A grant lists every target the request names; its reason says which one it was for, so a
  // restore cut short before its outcome record still shows what was opened.
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kGranted);
  CHECK(f.LastRecord().event.reason.find("to restore the file of SHA-256 " + ToHex(Sha256("image two"))) != std::string::npos);
}

TEST_CASE("an approval whose time was edited does not count: the signature covers the time") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow + 10);
  req.Approve(f.bob, kNow + 20);
  REQUIRE(f.store->AuthorizeRestore(req, kNow + 30).ok());
  auto edited = WithApprovalTime(req, 1, kNow + 25);
  auto grant = f.store->AuthorizeRestore(edited, kNow + 30);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: bad signature") != std::string::npos);
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kDenied);
}

TEST_CASE("an approval dated after the request expired does not count") {
  Fixture f;
  auto req = f.Request(0, 60);
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow + 60);  // signed at the moment the request expired
  auto grant = f.store->AuthorizeRestore(req, kNow + 30);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: approved after the request expired") != std::string::npos);
  CHECK(f.store->RecordApproval(req, "bob", kNow + 30).code() == StatusCode::kDeadlineExceeded);
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kDenied);
}

TEST_CASE("an approval signed the old way (the request alone, time unsigned) is not counted and says why") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  auto old = WithApproval(req, "bob", f.bob.Sign(kApprovalDomainV1, req.digest()));
  auto grant = f.store->AuthorizeRestore(old, kNow + 1);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: an approval by an older Veil") != std::string::npos);
}

TEST_CASE("a revoked approver's signature does not count") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  REQUIRE(f.store->RevokePrincipal("bob").ok());
  auto grant = f.store->AuthorizeRestore(req, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("bob: revoked") != std::string::npos);
  req.Approve(f.carol, kNow);
  CHECK(f.store->AuthorizeRestore(req, kNow).ok());
}

TEST_CASE("the requester cannot approve their own request, nor can non-approvers") {
  Fixture f;
  REQUIRE(f.store->AddPrincipal("oscar", Role::kApprover, PrincipalKey::Generate("x").public_key()).ok());
  REQUIRE(f.store->AddPrincipal("otto", Role::kOperator, PrincipalKey::Generate("otto").public_key()).ok());
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.olivia, kNow);  // operator, and the requester: her own signature, not an approval
  auto grant = f.store->AuthorizeRestore(req, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("1 of 2 required approvals") == 0);
  auto otto = PrincipalKey::Generate("otto");
  REQUIRE(f.store->SetPolicy("default", 1).ok());
  auto by_operator = f.Request();
  by_operator.Approve(otto, kNow);  // another operator
  grant = f.store->AuthorizeRestore(by_operator, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("otto: not an approver") != std::string::npos);
}

// The format version in a key store file's sealed header.
uint32_t StoreFormatVersion(const TempDir& dir) {
  auto bytes = ReadFile(dir / KeyStore::kStoreFile);
  REQUIRE(bytes.ok());
  uint32_t hlen = 0;
  for (int i = 0; i < 4; ++i) hlen |= static_cast<uint32_t>(static_cast<unsigned char>((*bytes)[8 + i])) << (8 * i);
  proto::SealedHeader header;
  REQUIRE(header.ParseFromString(bytes->substr(12, hlen)));
  return header.format_version();
}

TEST_CASE("a keyring whose policy wants the requester's own signature denies a request its requester has not signed") {
  Fixture f;
  CHECK(StoreFormatVersion(f.dir) == 1);
  REQUIRE(f.store->SetPolicy("default", 2, true).ok());
  auto info = f.store->Info();
  CHECK(info.keyrings[0].requester_signs);
  // An older Veil, which would grant without her signature, refuses the store as a newer format.
  CHECK(StoreFormatVersion(f.dir) == 2);
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  auto grant = f.store->AuthorizeRestore(req, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("'olivia' has not signed the request") != std::string::npos);
  CHECK(f.LastRecord().event.outcome == AuditOutcome::kDenied);
  // Someone else's key under her name does not pass for her signature.
  auto forged = req;
  forged.Approve(PrincipalKey::Generate("olivia"), kNow);
  grant = f.store->AuthorizeRestore(forged, kNow);
  CHECK(grant.status().code() == StatusCode::kPermissionDenied);
  CHECK(grant.status().message().find("olivia: the requester's signature: bad signature") != std::string::npos);
  // Her signature, logged online as hers, makes the grant, which says it was signed.
  req.Approve(f.olivia, kNow);
  REQUIRE(f.store->RecordApproval(req, "olivia", kNow).ok());
  CHECK(f.LastRecord().event.reason == "signed by its requester (not an approval)");
  CHECK(f.LastRecord().event.action == AuditAction::kRequestSigned);
  CHECK(std::string(AuditActionName(f.LastRecord().event.action)) == "request-signed");
  grant = f.store->AuthorizeRestore(req, kNow);
  REQUIRE_MESSAGE(grant.ok(), grant.status().ToString());
  CHECK(f.LastRecord().event.reason.find("requester olivia (signed)") == 0);
  // It is never one of the m approvals.
  auto alone = f.Request();
  alone.Approve(f.olivia, kNow);
  alone.Approve(f.alice, kNow);
  CHECK(f.store->AuthorizeRestore(alone, kNow).status().message().find("1 of 2 required approvals") == 0);
  // Setting the approvals alone leaves the requirement as it was; it can be turned off.
  REQUIRE(f.store->SetPolicy("default", 2).ok());
  CHECK(f.store->Info().keyrings[0].requester_signs);
  REQUIRE(f.store->SetPolicy("default", 2, false).ok());
  CHECK_FALSE(f.store->Info().keyrings[0].requester_signs);
  CHECK(StoreFormatVersion(f.dir) == 1);
  auto unsigned_request = f.Request();
  unsigned_request.Approve(f.alice, kNow);
  unsigned_request.Approve(f.bob, kNow);
  REQUIRE(f.store->AuthorizeRestore(unsigned_request, kNow).ok());
  CHECK(f.LastRecord().event.reason.find("requester olivia (not signed)") == 0);
}

TEST_CASE("an unknown or revoked requester cannot create or use a request") {
  Fixture f;
  // alice is an approver, not an operator.
  RestoreRequestSpec spec{"default", 0, {Sha256("x")}, "c", "p", "alice", kNow + 100};
  CHECK(f.store->CreateRequest(spec, kNow).status().code() == StatusCode::kPermissionDenied);
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  REQUIRE(f.store->RevokePrincipal("olivia").ok());
  CHECK(f.store->AuthorizeRestore(req, kNow).status().code() == StatusCode::kPermissionDenied);
}

TEST_CASE("a destroyed or disabled key version is not released") {
  Fixture f;
  REQUIRE(f.store->Rotate("default").ok());
  auto for_v1 = f.Request(1);
  for_v1.Approve(f.alice, kNow);
  for_v1.Approve(f.bob, kNow);
  REQUIRE(f.store->SetKeyStatus("default", 1, KeyStatus::kDisabled).ok());
  auto disabled = f.store->AuthorizeRestore(for_v1, kNow);
  CHECK(disabled.status().code() == StatusCode::kFailedPrecondition);
  CHECK(disabled.status().message().find("disabled") != std::string::npos);
  REQUIRE(f.store->SetKeyStatus("default", 1, KeyStatus::kDestroyed).ok());
  auto destroyed = f.store->AuthorizeRestore(for_v1, kNow);
  CHECK(destroyed.status().code() == StatusCode::kFailedPrecondition);
  CHECK(destroyed.status().message().find("destroyed") != std::string::npos);
  // A request for any version gets only the enabled one.
  auto any = f.Request(0);
  any.Approve(f.alice, kNow);
  any.Approve(f.bob, kNow);
  auto grant = f.store->AuthorizeRestore(any, kNow);
  REQUIRE(grant.ok());
  CHECK(grant->Key("default", 2).ok());
  CHECK(grant->Key("default", 1).status().code() == StatusCode::kFailedPrecondition);
  CHECK(grant->Key("default", 1).status().message().find("destroyed") != std::string::npos);
  CHECK(grant->Key("default", 3).status().code() == StatusCode::kPermissionDenied);
}

TEST_CASE("a request made for another key store is refused") {
  Fixture f, g;
  auto req = g.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  CHECK(f.store->AuthorizeRestore(req, kNow).status().code() == StatusCode::kPermissionDenied);
}

namespace {

// A request file rewritten by hand: `edit` changes the request inside; the approvals are made anew
// over what results (the approvers sign whatever they are shown), the issuer signature kept or not.
RestoreRequest Forged(const RestoreRequest& original, const std::function<void(proto::RestoreRequest&)>& edit,
                      bool keep_issuer_signature, Fixture& f) {
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(original.Serialize()));
  proto::RestoreRequest inner;
  REQUIRE(inner.ParseFromString(file.request()));
  edit(inner);
  file.set_request(inner.SerializeAsString());
  if (!keep_issuer_signature) file.clear_issuer_signature();
  auto parsed = RestoreRequest::Parse(file.SerializeAsString());
  REQUIRE(parsed.ok());
  parsed->Approve(f.alice, kNow);
  parsed->Approve(f.bob, kNow);
  return std::move(parsed.value());
}

}  // namespace

TEST_CASE("a request the key store did not issue is refused, however well approved") {
  Fixture f;
  const RestoreRequest issued = f.Request();
  CHECK_FALSE(issued.issuer_signature().empty());
  // Made by hand from scratch (no issuer signature), or an issued one with its requester, lifetime
  // or targets changed (the signature no longer matches).
  const std::vector<RestoreRequest> forged = {
      Forged(issued, [](proto::RestoreRequest&) {}, false, f),
      Forged(issued, [](proto::RestoreRequest& r) { r.set_requester("mallory"); }, true, f),
      Forged(issued, [](proto::RestoreRequest& r) { r.set_expires_unix(int64_t{1} << 62); }, true, f),
      Forged(issued, [](proto::RestoreRequest& r) { r.add_targets(Sha256("another image")); }, true, f),
  };
  for (const auto& req : forged) {
    auto grant = f.store->AuthorizeRestore(req, kNow + 10);
    CHECK(grant.status().code() == StatusCode::kPermissionDenied);
    CHECK(grant.status().message().find("not issued by this key store") != std::string::npos);
    CHECK(f.LastRecord().event.outcome == AuditOutcome::kDenied);
  }
  // The untouched request, approved the same way, is granted.
  auto approved = Forged(issued, [](proto::RestoreRequest&) {}, true, f);
  CHECK(f.store->AuthorizeRestore(approved, kNow + 10).ok());
}

TEST_CASE("a request lives at most 366 days, and one dated after the store's clock is refused") {
  Fixture f;
  RestoreRequestSpec spec{"default", 0, {Sha256("image one")}, "CASE-1", "court order", "olivia", kNow + 367 * 86400};
  CHECK(f.store->CreateRequest(spec, kNow).status().code() == StatusCode::kInvalidArgument);
  spec.expires_unix = kNow + 366 * 86400;
  CHECK(f.store->CreateRequest(spec, kNow).ok());
  // Made on a machine whose clock runs an hour ahead of the one that authorizes it.
  spec.expires_unix = kNow + 7200;
  auto ahead = f.store->CreateRequest(spec, kNow + 3600);
  REQUIRE(ahead.ok());
  ahead->Approve(f.alice, kNow);
  ahead->Approve(f.bob, kNow);
  CHECK(f.store->AuthorizeRestore(*ahead, kNow).status().code() == StatusCode::kPermissionDenied);
  CHECK(f.store->AuthorizeRestore(*ahead, kNow + 3600).ok());
}

TEST_CASE("a request file round trips, and corrupt request files are refused") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  std::string bytes = req.Serialize();
  auto back = RestoreRequest::Parse(bytes);
  REQUIRE(back.ok());
  CHECK(back->digest() == req.digest());
  CHECK(back->info().case_id == "CASE-1");
  CHECK(back->approvals().size() == 1);
  CHECK_FALSE(RestoreRequest::Parse("not a request at all, just text").ok());
  CHECK_FALSE(RestoreRequest::Parse(std::string(300 * 1024, 'x')).ok());
  // Any change to the signed part changes the digest, so existing approvals no longer verify.
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x01;
    auto parsed = RestoreRequest::Parse(bad);
    if (!parsed.ok()) continue;
    if (parsed->digest() == req.digest()) continue;  // the flip hit the (unsigned) approval entry
    CHECK(f.store->AuthorizeRestore(*parsed, kNow).status().code() != StatusCode::kOk);
  }
}

TEST_CASE("an empty request file is corrupt (data loss), one from a newer Veil is unsupported") {
  CHECK(RestoreRequest::Parse("").status().code() == StatusCode::kDataLoss);
  Fixture f;
  proto::SignedRestoreRequest file;
  REQUIRE(file.ParseFromString(f.Request().Serialize()));
  proto::RestoreRequest inner;
  REQUIRE(inner.ParseFromString(file.request()));
  for (auto [version, code] : {std::pair{0u, StatusCode::kDataLoss}, std::pair{2u, StatusCode::kUnsupported}}) {
    inner.set_format_version(version);
    file.set_request(inner.SerializeAsString());
    CHECK(RestoreRequest::Parse(file.SerializeAsString()).status().code() == code);
  }
  CHECK(CheckFormatVersion("manifest", 1, 1).ok());
}

TEST_CASE("when the audit record cannot be written, no grant is released (fail closed)") {
  Fixture f;
  auto req = f.Request();
  req.Approve(f.alice, kNow);
  req.Approve(f.bob, kNow);
  const auto log_size = std::filesystem::file_size(f.dir / KeyStore::kAuditFile);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: the file-size limit makes the next append fail with EFBIG.
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{static_cast<rlim_t>(log_size + 8), static_cast<rlim_t>(log_size + 8)};
    setrlimit(RLIMIT_FSIZE, &lim);
    auto grant = f.store->AuthorizeRestore(req, kNow);
    _exit(grant.ok() ? 0 : (grant.status().code() == StatusCode::kIoError ? 42 : 43));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
  CHECK(std::filesystem::file_size(f.dir / KeyStore::kAuditFile) == log_size);
  CHECK(VerifyAuditLog(f.dir / KeyStore::kAuditFile, {}).ok());
}
