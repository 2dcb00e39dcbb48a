// Where the key store is and how to unlock it, from command-line options and the environment:
//   --store DIR            or $VEIL_STORE              (default ./veil-store)
//   --key-file F           a 32-byte key file (services)
//   --passphrase-file F    first line of F
//   $VEIL_PASSPHRASE       for automation
//   otherwise a no-echo prompt on the terminal.
// Principal key files: --principal-passphrase-file F, $VEIL_PRINCIPAL_PASSPHRASE, or a prompt.
// The actor named in audit records: --actor NAME, $VEIL_ACTOR, $USER, or "local".
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli.h"
#include "veil/keys/credential.h"
#include "veil/keys/key_store.h"

namespace veil::cli {

// Every store-related option, read before Args::Finish() so none counts as unknown.
struct StoreOptions {
  std::string dir;
  std::string actor;
  std::optional<std::string> key_file;
  std::optional<std::string> passphrase_file;
  std::optional<std::string> principal_passphrase_file;
  keys::KdfLimits limits;  // --kdf-ops N (1..64), --kdf-mem-mib M (1..4096): cost for new files
  Status status;           // the first bad option, if any
};

StoreOptions ReadStoreOptions(Args& args);

// `confirm`: ask twice on a terminal (when creating a new file).
StatusOr<keys::Credential> StoreCredential(const StoreOptions& options, bool confirm);
StatusOr<keys::Credential> PrincipalCredential(const StoreOptions& options, const std::string& principal, bool confirm);

// The key store's folder for sealed originals kept only on its side (--payload store): an image's
// manifest with payloads as "<manifest id hex>.veil", a video's payload container as ".veilpay".
std::string StorePayloadFolder(const StoreOptions& options);
std::string StoreVideoPayloadName(const std::string& manifest_id);
std::string StoreVideoPayloadPath(const StoreOptions& options, const std::string& manifest_id);

// Opens the store named by the options; prints what the open found and logged (warnings).
StatusOr<std::unique_ptr<keys::KeyStore>> OpenStore(const StoreOptions& options, keys::KeyStore::Access access);
// The same with a credential already read (a command that opens the store more than once asks once).
StatusOr<std::unique_ptr<keys::KeyStore>> OpenStore(const StoreOptions& options, const keys::Credential& credential,
                                                    keys::KeyStore::Access access);

}  // namespace veil::cli
