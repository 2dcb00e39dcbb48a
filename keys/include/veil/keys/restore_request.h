// A restore request: what is to be restored (the SHA-256 of each anonymized file), why (case id,
// purpose), who asks, until when, and the approvers' signatures. It travels as a file between the
// operator and the approvers; the key store authorizes it (KeyStore::AuthorizeRestore).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "veil/keys/principal_key.h"
#include "veil/status.h"

namespace veil::keys {

// An approval signs the request's digest and its own time (ApprovalMessage). Approvals made before
// 2026-12-06 (domain "veil-approval-v1") signed the digest alone, so their time could be changed
// at will; they are no longer counted, and the approver is asked to approve again.
inline constexpr std::string_view kApprovalDomain = "veil-approval-v2";
inline constexpr std::string_view kApprovalDomainV1 = "veil-approval-v1";
inline constexpr std::string_view kRequestIssuedDomain = "veil-request-issued-v1";
// The longest a request may stay valid, from its creation.
inline constexpr int64_t kMaxRequestLifetimeSeconds = 366 * 86400;

// What an approval signs after its domain: the request's digest, then its time (signed_unix) as
// 8 bytes little-endian.
std::string ApprovalMessage(std::string_view digest, int64_t signed_unix);

// "2026-12-06T04:10:00Z": a unix time as people read it in messages (requests' dates, the log).
std::string IsoTimeUtc(int64_t unix_seconds);

struct RestoreRequestSpec {
  std::string keyring;
  uint32_t key_version = 0;              // 0: any enabled version
  std::vector<std::string> targets;      // raw 32-byte digests
  std::string case_id;
  std::string purpose;
  std::string requester;                 // principal name (operator or admin)
  int64_t expires_unix = 0;
};

struct ApprovalInfo {
  std::string approver;
  int64_t signed_unix = 0;
};

struct RestoreRequestInfo {
  std::string request_id_hex;
  std::string store_id_hex;
  std::string keyring;
  uint32_t key_version = 0;
  std::vector<std::string> targets_hex;
  std::string case_id;
  std::string purpose;
  std::string requester;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;
  std::vector<ApprovalInfo> approvals;
  std::string digest_hex;                // BLAKE2b-256 of the signed request bytes
};

class RestoreRequest {
 public:
  struct Approval {
    std::string approver;
    std::string signature;
    int64_t signed_unix = 0;
  };

  // Parses and validates a request file (size limits, format version, field sizes).
  static StatusOr<RestoreRequest> Parse(std::string_view bytes);
  // Builds a new, unapproved request (used by KeyStore::CreateRequest).
  static StatusOr<RestoreRequest> Build(const RestoreRequestSpec& spec, const std::string& store_id,
                                        int64_t now_unix);
  std::string Serialize() const;

  const RestoreRequestInfo& info() const { return info_; }
  const std::string& digest() const { return digest_; }          // raw 32 bytes
  const std::string& store_id() const { return store_id_; }      // raw 16 bytes
  const std::vector<std::string>& targets() const { return targets_; }
  const std::vector<Approval>& approvals() const { return approvals_; }
  // The key store's signature over digest() (see request.proto); empty on a request it did not make.
  const std::string& issuer_signature() const { return issuer_signature_; }

  // Signs the request and `now_unix` with the approver's key; replaces an earlier approval by the
  // same name. Callers refuse to approve a request that has expired (the key store ignores an
  // approval dated at or after the request's expiry).
  void Approve(const PrincipalKey& key, int64_t now_unix);

 private:
  RestoreRequest() = default;
  friend class KeyStore;  // signs the requests it creates
  void RefreshInfo();
  std::string request_bytes_;
  std::string issuer_signature_;
  std::string digest_;
  std::string store_id_;
  std::vector<std::string> targets_;
  std::vector<Approval> approvals_;
  RestoreRequestInfo info_;
};

}  // namespace veil::keys
