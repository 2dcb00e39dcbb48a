#include "veil/keys/aead.h"

#include <sodium.h>

namespace veil::keys {
namespace {

constexpr std::string_view kMagic = "VPL1";
constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;

std::string Header(const std::string& keyring, uint32_t version, ScopeKind scope, std::string_view scope_id) {
  std::string h(kMagic);
  h.push_back(static_cast<char>(keyring.size()));
  h += keyring;
  for (int i = 0; i < 4; ++i) h.push_back(static_cast<char>((version >> (8 * i)) & 0xff));
  h.push_back(static_cast<char>(scope));
  h.push_back(static_cast<char>(scope_id.size() & 0xff));
  h.push_back(static_cast<char>((scope_id.size() >> 8) & 0xff));
  h.append(scope_id);
  return h;
}

// Parses the clear header; returns its length through `header_len`.
StatusOr<SealedRef> ParseHeader(std::string_view s, size_t* header_len) {
  const Status bad = DataLossError("not a Veil sealed payload, or a truncated one");
  if (s.size() < kMagic.size() + 1 || s.substr(0, kMagic.size()) != kMagic) return bad;
  size_t pos = kMagic.size();
  size_t klen = static_cast<unsigned char>(s[pos++]);
  if (s.size() < pos + klen + 4 + 1 + 2) return bad;
  SealedRef ref;
  ref.keyring.assign(s.substr(pos, klen));
  pos += klen;
  for (int i = 0; i < 4; ++i) ref.version |= static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  pos += 4;
  int scope = static_cast<unsigned char>(s[pos++]);
  if (scope < 1 || scope > 4) return bad;
  ref.scope = static_cast<ScopeKind>(scope);
  size_t slen = static_cast<unsigned char>(s[pos]) | (static_cast<size_t>(static_cast<unsigned char>(s[pos + 1])) << 8);
  pos += 2;
  if (s.size() < pos + slen + kNonce + kTag) return bad;
  ref.scope_id.assign(s.substr(pos, slen));
  *header_len = pos + slen;
  return ref;
}

}  // namespace

StatusOr<std::string> SealPayload(const KeyHandle& key, ScopeKind scope, std::string_view scope_id,
                                  std::string_view plaintext, std::string_view associated_data,
                                  bool synthetic_nonce) {
  EnsureSodium();
  if (key.keyring().size() > 255 || scope_id.size() > 65535) return InvalidArgumentError("payload scope too long");
  std::string out = Header(key.keyring(), key.version(), scope, scope_id);
  std::string ad = out;
  ad.append(associated_data);
  SecretBytes subkey = key.DeriveSubkey(KeyPurpose::kPayload, scope, scope_id);
  std::string nonce(kNonce, '\0');
  if (synthetic_nonce) {
    // BLAKE2b keyed with a nonce key separate from the encryption key, over (ad length, ad, data).
    SecretBytes nonce_key = ExpandSecret(subkey, "veil-payload-nonce-v1", 32);
    crypto_generichash_state st;
    crypto_generichash_init(&st, nonce_key.data(SecretAccess::Get()), nonce_key.size(), kNonce);
    uint64_t ad_len = ad.size();
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&ad_len), sizeof ad_len);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(ad.data()), ad.size());
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size());
    crypto_generichash_final(&st, reinterpret_cast<unsigned char*>(nonce.data()), nonce.size());
  } else {
    randombytes_buf(nonce.data(), nonce.size());
  }
  out += nonce;
  const size_t start = out.size();
  out.resize(start + plaintext.size() + kTag);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data() + start), &clen,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()), subkey.data(SecretAccess::Get()));
  out.resize(start + static_cast<size_t>(clen));
  return out;
}

StatusOr<SealedRef> PeekSealedRef(std::string_view sealed) {
  size_t header_len = 0;
  return ParseHeader(sealed, &header_len);
}

StatusOr<std::string> OpenPayload(const KeyHandle& key, std::string_view sealed, std::string_view associated_data) {
  EnsureSodium();
  size_t header_len = 0;
  auto ref = ParseHeader(sealed, &header_len);
  const Status failed = UnauthenticatedError("decryption failed");
  if (!ref.ok()) return failed;
  if (ref->keyring != key.keyring() || ref->version != key.version()) return failed;
  std::string ad(sealed.substr(0, header_len));
  ad.append(associated_data);
  std::string_view nonce = sealed.substr(header_len, kNonce);
  std::string_view ct = sealed.substr(header_len + kNonce);
  SecretBytes subkey = key.DeriveSubkey(KeyPurpose::kPayload, ref->scope, ref->scope_id);
  std::string plain(ct.size() - kTag, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr,
          reinterpret_cast<const unsigned char*>(ct.data()), ct.size(),
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          reinterpret_cast<const unsigned char*>(nonce.data()), subkey.data(SecretAccess::Get())) != 0) {
    return failed;  // nothing released
  }
  plain.resize(static_cast<size_t>(plen));
  return plain;
}

}  // namespace veil::keys
