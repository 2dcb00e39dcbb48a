#include "store_options.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "veil/keys/fs.h"

namespace veil::cli {
namespace {

// The passphrase is the first `length` bytes of `text` without trailing line ends; all of `text`
// is wiped, whatever it holds after them.
StatusOr<keys::SecretBytes> FromText(std::string* text, size_t length, const std::string& source) {
  length = std::min(length, text->size());
  while (length > 0 && ((*text)[length - 1] == '\n' || (*text)[length - 1] == '\r')) --length;
  if (length == 0) {
    keys::WipeString(text);
    return InvalidArgumentError("the passphrase from " + source + " is empty");
  }
  keys::SecretBytes s = keys::SecretBytes::Copy(text->data(), length);
  keys::WipeString(text);
  return s;
}

StatusOr<keys::SecretBytes> ReadPassphraseFile(const std::string& path) {
  auto bytes = keys::ReadFile(path, 4096);
  if (!bytes.ok()) return bytes.status().WithContext("reading passphrase file");
  std::string text = std::move(bytes.value());
  const size_t first_line = text.find('\n');  // npos: the whole file
  return FromText(&text, first_line, "file " + path);
}

StatusOr<keys::SecretBytes> Prompt(const std::string& question) {
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (!tty) return InvalidArgumentError("no passphrase given and no terminal to ask on");
  std::setvbuf(tty, nullptr, _IONBF, 0);  // no stdio buffer keeps a copy of the passphrase
  std::fprintf(tty, "%s", question.c_str());
  std::fflush(tty);
  termios old {};
  bool restore = tcgetattr(fileno(tty), &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
  }
  keys::SecretBytes buf(1024);
  char* p = reinterpret_cast<char*>(buf.data(keys::SecretAccess::Get()));
  bool got = std::fgets(p, static_cast<int>(buf.size()), tty) != nullptr;
  if (restore) tcsetattr(fileno(tty), TCSAFLUSH, &old);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  if (!got) return InvalidArgumentError("no passphrase entered");
  size_t n = std::strlen(p);
  while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) --n;
  if (n == 0) return InvalidArgumentError("the passphrase is empty");
  return keys::SecretBytes::Copy(p, n);
}

StatusOr<keys::SecretBytes> Passphrase(const std::optional<std::string>& file, const char* env,
                                       const std::string& what, bool confirm) {
  if (file) return ReadPassphraseFile(*file);
  if (const char* e = std::getenv(env)) {
    std::string text = e;
    return FromText(&text, text.size(), std::string("$") + env);
  }
  VEIL_ASSIGN_OR_RETURN(keys::SecretBytes first, Prompt("Passphrase for " + what + ": "));
  if (confirm) {
    VEIL_ASSIGN_OR_RETURN(keys::SecretBytes again, Prompt("Repeat the passphrase: "));
    if (!first.Equals(again)) return InvalidArgumentError("the passphrases differ");
  }
  return first;
}

}  // namespace

StoreOptions ReadStoreOptions(Args& args) {
  StoreOptions o;
  if (auto s = args.Get("--store")) o.dir = *s;
  else if (const char* e = std::getenv("VEIL_STORE")) o.dir = e;
  else o.dir = "veil-store";
  if (auto a = args.Get("--actor")) o.actor = *a;
  else if (const char* e = std::getenv("VEIL_ACTOR")) o.actor = e;
  else if (const char* u = std::getenv("USER")) o.actor = u;
  else o.actor = "local";
  o.key_file = args.Get("--key-file");
  o.passphrase_file = args.Get("--passphrase-file");
  o.principal_passphrase_file = args.Get("--principal-passphrase-file");
  if (o.key_file && o.passphrase_file) o.status = InvalidArgumentError("give either --key-file or --passphrase-file, not both");
  auto ops = args.GetInt("--kdf-ops", static_cast<long long>(o.limits.opslimit), 1, 64);
  auto mib = args.GetInt("--kdf-mem-mib", static_cast<long long>(o.limits.memlimit >> 20), 1, 4096);
  if (!ops.ok()) o.status = ops.status();
  else o.limits.opslimit = static_cast<uint64_t>(*ops);
  if (!mib.ok()) o.status = mib.status();
  else o.limits.memlimit = static_cast<uint64_t>(*mib) << 20;
  return o;
}

StatusOr<keys::Credential> StoreCredential(const StoreOptions& o, bool confirm) {
  VEIL_RETURN_IF_ERROR(o.status);
  if (o.key_file) return keys::Credential::FromKeyFile(*o.key_file);
  VEIL_ASSIGN_OR_RETURN(keys::SecretBytes pass, Passphrase(o.passphrase_file, "VEIL_PASSPHRASE", "the key store", confirm));
  return keys::Credential::FromPassphrase(std::move(pass));
}

StatusOr<keys::Credential> PrincipalCredential(const StoreOptions& o, const std::string& principal, bool confirm) {
  VEIL_ASSIGN_OR_RETURN(keys::SecretBytes pass, Passphrase(o.principal_passphrase_file, "VEIL_PRINCIPAL_PASSPHRASE",
                                                           "principal '" + principal + "'", confirm));
  return keys::Credential::FromPassphrase(std::move(pass));
}

StatusOr<std::unique_ptr<keys::KeyStore>> OpenStore(const StoreOptions& o, keys::KeyStore::Access access) {
  VEIL_ASSIGN_OR_RETURN(keys::Credential credential, StoreCredential(o, false));
  return OpenStore(o, credential, access);
}

StatusOr<std::unique_ptr<keys::KeyStore>> OpenStore(const StoreOptions& o, const keys::Credential& credential,
                                                    keys::KeyStore::Access access) {
  auto store = keys::KeyStore::Open(o.dir, credential, access, o.actor);
  if (store.ok()) {
    for (const std::string& notice : (*store)->notices()) std::fprintf(stderr, "veil: warning: %s\n", OneLine(notice).c_str());
  }
  return store;
}

std::string StorePayloadFolder(const StoreOptions& options) {
  return (std::filesystem::path(options.dir) / "payloads").string();
}

std::string StoreVideoPayloadName(const std::string& manifest_id) { return keys::ToHex(manifest_id) + ".veilpay"; }

std::string StoreVideoPayloadPath(const StoreOptions& options, const std::string& manifest_id) {
  return (std::filesystem::path(StorePayloadFolder(options)) / StoreVideoPayloadName(manifest_id)).string();
}

}  // namespace veil::cli
