#include "veil/keys/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace veil::keys {

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

SecretBytes::SecretBytes(size_t size) {
  EnsureSodium();
  if (size == 0) return;
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) std::abort();  // out of locked memory: refuse to continue insecurely
  size_ = size;
  sodium_memzero(data_, size_);
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes s(size);
  if (size) randombytes_buf(s.data_, size);
  return s;
}

SecretBytes SecretBytes::Copy(const void* data, size_t size) {
  SecretBytes s(size);
  if (size) std::memcpy(s.data_, data, size);
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (data_) sodium_free(data_);  // sodium_free wipes before freeing
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

SecretBytes ExpandSecret(const SecretBytes& key32, std::string_view context, size_t n) {
  EnsureSodium();
  if (key32.size() != crypto_stream_chacha20_ietf_KEYBYTES) std::abort();  // API misuse
  unsigned char nonce_full[32];
  crypto_generichash(nonce_full, sizeof nonce_full, reinterpret_cast<const unsigned char*>(context.data()),
                     context.size(), nullptr, 0);
  SecretBytes out(n);
  if (n) crypto_stream_chacha20_ietf(out.data(SecretAccess::Get()), n, nonce_full, key32.data(SecretAccess::Get()));
  return out;
}

void WipeString(std::string* s) {
  if (s && !s->empty()) sodium_memzero(s->data(), s->size());
  if (s) s->clear();
}

std::string ToHex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

size_t DisplayControlLength(std::string_view text, size_t i) {
  const auto at = [&](size_t k) { return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u; };
  const unsigned c = at(i);
  if (c < 0x20 || c == 0x7f) return 1;
  if (c == 0xc2 && at(i + 1) >= 0x80 && at(i + 1) <= 0x9f) return 2;
  if (c == 0xd8 && at(i + 1) == 0x9c) return 2;  // U+061C
  if (c == 0xe2 && at(i + 1) == 0x80) {
    const unsigned d = at(i + 2);
    if (d == 0x8e || d == 0x8f || (d >= 0xa8 && d <= 0xae)) return 3;  // U+200E, U+200F, U+2028..U+202E
  }
  if (c == 0xe2 && at(i + 1) == 0x81 && at(i + 2) >= 0xa6 && at(i + 2) <= 0xa9) return 3;  // U+2066..U+2069
  return 0;
}

StatusOr<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgumentError("hex text has an odd number of digits");
  std::string out;
  out.resize(hex.size() / 2);
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("not hex: '" + std::string(hex.substr(0, 80)) + "'");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string Sha256(std::string_view data) {
  EnsureSodium();
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return out;
}

Sha256Hasher::Sha256Hasher() {
  static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(state_), "Sha256Hasher state too small");
  EnsureSodium();
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}

void Sha256Hasher::Update(std::string_view data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
  bytes_ += data.size();
}

std::string Sha256Hasher::Digest() const {
  crypto_hash_sha256_state copy;
  std::memcpy(&copy, state_, sizeof(copy));
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&copy, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string Blake2b256(std::string_view data) {
  EnsureSodium();
  std::string out(32, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return out;
}

}  // namespace veil::keys
