#include "veil/keys/principal_key.h"

#include <sodium.h>

#include "sealed_file.h"
#include "veil/keys/fs.h"

namespace veil::keys {

PrincipalKey PrincipalKey::Generate(const std::string& name) {
  EnsureSodium();
  PrincipalKey k;
  k.name_ = name;
  k.public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  k.secret_key_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(k.public_key_.data()), k.secret_key_.data(SecretAccess::Get()));
  return k;
}

StatusOr<PrincipalKey> PrincipalKey::Load(const std::string& path, const Credential& credential) {
  VEIL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, 64 * 1024));
  VEIL_ASSIGN_OR_RETURN(internal::SealedFile file, internal::ParseSealed(bytes));
  if (file.header.content() != proto::SealedHeader::CONTENT_PRINCIPAL_SECRET) {
    return InvalidArgumentError(path + " is not a principal key file");
  }
  VEIL_ASSIGN_OR_RETURN(SecretBytes file_key, internal::DeriveFileKey(credential, file.header.kdf()));
  VEIL_ASSIGN_OR_RETURN(SecretBytes plain, internal::OpenSealed(file, file_key));
  proto::PrincipalSecret secret;
  auto access = SecretAccess::Get();
  if (!secret.ParseFromArray(plain.data(access), static_cast<int>(plain.size())) ||
      secret.secret_key().size() != crypto_sign_SECRETKEYBYTES || secret.name().empty()) {
    WipeString(secret.mutable_secret_key());
    return DataLossError("principal key file " + path + " has a corrupt body");
  }
  PrincipalKey k;
  k.name_ = secret.name();
  k.secret_key_ = SecretBytes::Copy(secret.secret_key().data(), secret.secret_key().size());
  WipeString(secret.mutable_secret_key());
  k.public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(k.public_key_.data()), k.secret_key_.data(access));
  return k;
}

Status PrincipalKey::Save(const std::string& path, const Credential& credential, const KdfLimits& limits) const {
  proto::SealedHeader header;
  header.set_format_version(internal::kSealFormatVersion);
  header.mutable_producer()->set_name("veil");
  header.mutable_producer()->set_version(VEIL_VERSION);
  header.set_content(proto::SealedHeader::CONTENT_PRINCIPAL_SECRET);
  *header.mutable_kdf() = internal::NewKdfParams(credential, limits);
  VEIL_ASSIGN_OR_RETURN(SecretBytes file_key, internal::DeriveFileKey(credential, header.kdf()));
  proto::PrincipalSecret secret;
  secret.set_name(name_);
  secret.set_secret_key(std::string(secret_key_.view(SecretAccess::Get())));
  SecretBytes plain = internal::SerializeSecret(secret);
  WipeString(secret.mutable_secret_key());
  return WriteFileAtomic(path, internal::Seal(header, file_key, plain), /*overwrite=*/false, 0600);
}

std::string PrincipalKey::Sign(std::string_view domain, std::string_view message) const {
  return SignWithDomain(domain, message, secret_key_);
}

std::string SignWithDomain(std::string_view domain, std::string_view message, const SecretBytes& secret_key) {
  EnsureSodium();
  std::string m(domain);
  m += message;
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(m.data()), m.size(), secret_key.data(SecretAccess::Get()));
  return sig;
}

bool VerifySignature(std::string_view domain, std::string_view message, std::string_view signature,
                     std::string_view public_key) {
  EnsureSodium();
  if (signature.size() != crypto_sign_BYTES || public_key.size() != crypto_sign_PUBLICKEYBYTES) return false;
  std::string m(domain);
  m += message;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                                     reinterpret_cast<const unsigned char*>(public_key.data())) == 0;
}

}  // namespace veil::keys
