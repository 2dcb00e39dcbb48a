#include "sealed_file.h"

#include <sodium.h>

#include <cstring>

#include "veil/keys/fs.h"

namespace veil::keys::internal {
namespace {

constexpr uint64_t kMaxOpsLimit = 64;
constexpr uint64_t kMaxMemLimit = 4ull << 30;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view b) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

}  // namespace

StatusOr<SealedFile> ParseSealed(std::string_view bytes) {
  const size_t fixed = kSealMagic.size() + 4;
  if (bytes.size() < fixed || bytes.substr(0, kSealMagic.size()) != kSealMagic) {
    return DataLossError("not a Veil sealed file (bad magic)");
  }
  uint32_t hlen = GetU32(bytes.substr(kSealMagic.size(), 4));
  if (hlen > kMaxSealHeader || bytes.size() < fixed + hlen + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                                   crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return DataLossError("sealed file is truncated or its header length is corrupt");
  }
  SealedFile f;
  if (!f.header.ParseFromArray(bytes.data() + fixed, static_cast<int>(hlen))) {
    return DataLossError("sealed file header does not parse");
  }
  if (f.header.format_version() != kSealFormatVersionEnforcedPolicy) {
    VEIL_RETURN_IF_ERROR(CheckFormatVersion("sealed file", f.header.format_version(), kSealFormatVersion));
  }
  const auto& kdf = f.header.kdf();
  if (kdf.kind() == proto::KdfParams::KIND_ARGON2ID) {
    if (kdf.salt().size() != crypto_pwhash_SALTBYTES || kdf.opslimit() < crypto_pwhash_OPSLIMIT_MIN ||
        kdf.opslimit() > kMaxOpsLimit || kdf.memlimit() < crypto_pwhash_MEMLIMIT_MIN || kdf.memlimit() > kMaxMemLimit) {
      return DataLossError("sealed file has invalid key-derivation parameters");
    }
  } else if (kdf.kind() != proto::KdfParams::KIND_RAW_KEY) {
    return DataLossError("sealed file names an unknown key-derivation kind");
  }
  f.associated_data.assign(bytes.data(), fixed + hlen);
  size_t pos = fixed + hlen;
  f.nonce.assign(bytes.data() + pos, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  pos += crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  f.ciphertext.assign(bytes.data() + pos, bytes.size() - pos);
  return f;
}

proto::KdfParams NewKdfParams(const Credential& credential, const KdfLimits& limits) {
  EnsureSodium();
  proto::KdfParams kdf;
  if (!credential.is_passphrase()) {
    kdf.set_kind(proto::KdfParams::KIND_RAW_KEY);
    return kdf;
  }
  kdf.set_kind(proto::KdfParams::KIND_ARGON2ID);
  kdf.set_opslimit(std::max<uint64_t>(limits.opslimit, crypto_pwhash_OPSLIMIT_MIN));
  kdf.set_memlimit(std::max<uint64_t>(limits.memlimit, crypto_pwhash_MEMLIMIT_MIN));
  std::string salt(crypto_pwhash_SALTBYTES, '\0');
  randombytes_buf(salt.data(), salt.size());
  kdf.set_salt(salt);
  return kdf;
}

StatusOr<SecretBytes> DeriveFileKey(const Credential& credential, const proto::KdfParams& kdf) {
  EnsureSodium();
  const SecretBytes& secret = credential.secret();
  if (kdf.kind() == proto::KdfParams::KIND_RAW_KEY) {
    if (credential.is_passphrase()) {
      return UnauthenticatedError("this file is unlocked with a key file (--key-file), not a passphrase");
    }
    return secret.Clone();
  }
  if (!credential.is_passphrase()) {
    return UnauthenticatedError("this file is unlocked with a passphrase, not a key file");
  }
  SecretBytes key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  auto access = SecretAccess::Get();
  if (crypto_pwhash(key.data(access), key.size(), reinterpret_cast<const char*>(secret.data(access)), secret.size(),
                    reinterpret_cast<const unsigned char*>(kdf.salt().data()), kdf.opslimit(),
                    static_cast<size_t>(kdf.memlimit()), crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return ResourceExhaustedError("not enough memory for the key-derivation function");
  }
  return key;
}

StatusOr<SecretBytes> OpenSealed(const SealedFile& file, const SecretBytes& file_key) {
  const size_t n = file.ciphertext.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES;
  SecretBytes plain(n == 0 ? 1 : n);
  unsigned long long out_len = 0;
  auto access = SecretAccess::Get();
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain.data(access), &out_len, nullptr, reinterpret_cast<const unsigned char*>(file.ciphertext.data()),
          file.ciphertext.size(), reinterpret_cast<const unsigned char*>(file.associated_data.data()),
          file.associated_data.size(), reinterpret_cast<const unsigned char*>(file.nonce.data()),
          file_key.data(access)) != 0) {
    return UnauthenticatedError("wrong passphrase or key file, or the file was altered");
  }
  return SecretBytes::Copy(plain.data(access), static_cast<size_t>(out_len));
}

std::string Seal(const proto::SealedHeader& header, const SecretBytes& file_key, const SecretBytes& plaintext) {
  EnsureSodium();
  std::string hdr = header.SerializeAsString();
  std::string out(kSealMagic);
  PutU32(&out, static_cast<uint32_t>(hdr.size()));
  out += hdr;
  const std::string ad = out;
  std::string nonce(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  out += nonce;
  std::string ct(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long ct_len = 0;
  auto access = SecretAccess::Get();
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(ct.data()), &ct_len, plaintext.data(access), plaintext.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()), file_key.data(access));
  ct.resize(static_cast<size_t>(ct_len));
  out += ct;
  return out;
}

SecretBytes SerializeSecret(const google::protobuf::MessageLite& message) {
  SecretBytes out(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(out.data(SecretAccess::Get()));
  return out;
}

}  // namespace veil::keys

namespace veil::keys {

Credential Credential::FromPassphrase(SecretBytes passphrase) { return Credential(std::move(passphrase), true); }

Credential Credential::FromRawKey(SecretBytes key32) { return Credential(std::move(key32), false); }

StatusOr<Credential> Credential::FromKeyFile(const std::string& path) {
  auto bytes = ReadFile(path, 4096);
  if (!bytes.ok()) return bytes.status().WithContext("reading key file");
  std::string& b = bytes.value();
  if (b.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
    WipeString(&b);
    return InvalidArgumentError("key file " + path + " must hold exactly 32 bytes");
  }
  Credential c(SecretBytes::Copy(b.data(), b.size()), false);
  WipeString(&b);
  return c;
}

Status Credential::CreateKeyFile(const std::string& path) {
  SecretBytes key = SecretBytes::Random(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  std::string tmp(key.view(SecretAccess::Get()));
  Status st = WriteFileAtomic(path, tmp, /*overwrite=*/false, 0600);
  WipeString(&tmp);
  return st;
}

}  // namespace veil::keys
