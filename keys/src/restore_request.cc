#include "veil/keys/restore_request.h"

#include <sodium.h>

#include <ctime>

#include "veil/keys/secret.h"
#include "veil/proto/request.pb.h"

namespace veil::keys {
namespace {

constexpr uint32_t kFormatVersion = 1;
constexpr size_t kMaxRequestFile = 256 * 1024;
constexpr size_t kMaxTargets = 4096;
constexpr size_t kMaxText = 1024;
constexpr size_t kMaxApprovals = 64;

Status CheckText(const std::string& field, const std::string& value, bool required) {
  if (required && value.empty()) return InvalidArgumentError("restore request needs a " + field);
  if (value.size() > kMaxText) return InvalidArgumentError("restore request " + field + " is too long");
  // Shown to approvers and auditors as it is: no line breaks, escape sequences or bidirectional
  // controls that could fake, reorder or hide the fields that follow it.
  for (size_t i = 0; i < value.size(); ++i) {
    if (DisplayControlLength(value, i) != 0) return InvalidArgumentError("restore request " + field + " holds a control character");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<RestoreRequest> RestoreRequest::Build(const RestoreRequestSpec& spec, const std::string& store_id,
                                               int64_t now_unix) {
  EnsureSodium();
  VEIL_RETURN_IF_ERROR(CheckText("keyring", spec.keyring, true));
  VEIL_RETURN_IF_ERROR(CheckText("case id", spec.case_id, true));
  VEIL_RETURN_IF_ERROR(CheckText("purpose", spec.purpose, true));
  VEIL_RETURN_IF_ERROR(CheckText("requester", spec.requester, true));
  if (spec.targets.empty()) return InvalidArgumentError("restore request names no target (the SHA-256 of a file)");
  if (spec.targets.size() > kMaxTargets) return InvalidArgumentError("restore request names too many targets");
  for (const auto& t : spec.targets) {
    if (t.size() != 32) return InvalidArgumentError("each restore target must be a 32-byte digest");
  }
  if (spec.expires_unix <= now_unix) return InvalidArgumentError("restore request must expire in the future");
  if (spec.expires_unix - now_unix > kMaxRequestLifetimeSeconds) {
    return InvalidArgumentError("restore request may stay valid for at most 366 days");
  }
  proto::RestoreRequest r;
  r.set_format_version(kFormatVersion);
  std::string id(16, '\0');
  randombytes_buf(id.data(), id.size());
  r.set_request_id(id);
  r.set_store_id(store_id);
  r.set_keyring(spec.keyring);
  r.set_key_version(spec.key_version);
  for (const auto& t : spec.targets) r.add_targets(t);
  r.set_case_id(spec.case_id);
  r.set_purpose(spec.purpose);
  r.set_requester(spec.requester);
  r.set_created_unix(now_unix);
  r.set_expires_unix(spec.expires_unix);
  proto::SignedRestoreRequest s;
  s.set_request(r.SerializeAsString());
  return Parse(s.SerializeAsString());
}

StatusOr<RestoreRequest> RestoreRequest::Parse(std::string_view bytes) {
  EnsureSodium();
  if (bytes.size() > kMaxRequestFile) return InvalidArgumentError("restore request file is too large");
  proto::SignedRestoreRequest s;
  proto::RestoreRequest r;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || !r.ParseFromString(s.request())) {
    return DataLossError("restore request does not parse (corrupt or not a request file)");
  }
  VEIL_RETURN_IF_ERROR(CheckFormatVersion("restore request", r.format_version(), kFormatVersion));
  if (r.request_id().size() != 16 || r.store_id().size() != 16) return DataLossError("restore request ids are malformed");
  // A field no request Veil makes could hold is damage (or tampering), as the README's exit 6 says.
  const auto check_field = [](const std::string& field, const std::string& value) {
    Status st = CheckText(field, value, true);
    return st.ok() ? st : DataLossError(st.message());
  };
  VEIL_RETURN_IF_ERROR(check_field("keyring", r.keyring()));
  VEIL_RETURN_IF_ERROR(check_field("case id", r.case_id()));
  VEIL_RETURN_IF_ERROR(check_field("purpose", r.purpose()));
  VEIL_RETURN_IF_ERROR(check_field("requester", r.requester()));
  if (r.targets_size() == 0 || static_cast<size_t>(r.targets_size()) > kMaxTargets) {
    return DataLossError("restore request has no or too many targets");
  }
  if (static_cast<size_t>(s.approvals_size()) > kMaxApprovals) return DataLossError("restore request has too many approvals");
  RestoreRequest out;
  out.request_bytes_ = s.request();
  out.digest_ = Blake2b256(out.request_bytes_);
  if (s.issuer_signature().size() > 64) return DataLossError("restore request issuer signature is malformed");
  out.issuer_signature_ = s.issuer_signature();
  out.store_id_ = r.store_id();
  for (const auto& t : r.targets()) {
    if (t.size() != 32) return DataLossError("restore request target is not a 32-byte digest");
    out.targets_.push_back(t);
  }
  for (const auto& a : s.approvals()) {
    VEIL_RETURN_IF_ERROR(check_field("approver", a.approver()));
    out.approvals_.push_back({a.approver(), a.signature(), a.signed_unix()});
  }
  out.info_.request_id_hex = ToHex(r.request_id());
  out.info_.store_id_hex = ToHex(r.store_id());
  out.info_.keyring = r.keyring();
  out.info_.key_version = r.key_version();
  for (const auto& t : out.targets_) out.info_.targets_hex.push_back(ToHex(t));
  out.info_.case_id = r.case_id();
  out.info_.purpose = r.purpose();
  out.info_.requester = r.requester();
  out.info_.created_unix = r.created_unix();
  out.info_.expires_unix = r.expires_unix();
  out.RefreshInfo();
  return out;
}

void RestoreRequest::RefreshInfo() {
  info_.digest_hex = ToHex(digest_);
  info_.approvals.clear();
  for (const auto& a : approvals_) info_.approvals.push_back({a.approver, a.signed_unix});
}

std::string IsoTimeUtc(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ApprovalMessage(std::string_view digest, int64_t signed_unix) {
  std::string m(digest);
  const auto t = static_cast<uint64_t>(signed_unix);
  for (int i = 0; i < 8; ++i) m.push_back(static_cast<char>((t >> (8 * i)) & 0xff));
  return m;
}

std::string RestoreRequest::Serialize() const {
  proto::SignedRestoreRequest s;
  s.set_request(request_bytes_);
  s.set_issuer_signature(issuer_signature_);
  for (const auto& a : approvals_) {
    auto* p = s.add_approvals();
    p->set_approver(a.approver);
    p->set_signature(a.signature);
    p->set_signed_unix(a.signed_unix);
  }
  return s.SerializeAsString();
}

void RestoreRequest::Approve(const PrincipalKey& key, int64_t now_unix) {
  Approval a{key.name(), key.Sign(kApprovalDomain, ApprovalMessage(digest_, now_unix)), now_unix};
  for (auto& existing : approvals_) {
    if (existing.approver == a.approver) {
      existing = a;
      RefreshInfo();
      return;
    }
  }
  approvals_.push_back(a);
  RefreshInfo();
}

}  // namespace veil::keys
