// veil keys: create the key store and manage keyrings and key versions.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "output.h"
#include "store_options.h"

namespace veil::cli {
namespace {

using keys::KeyStore;

const char* kUsage =
    "usage: veil keys SUBCOMMAND [OPTIONS]\n"
    "  init     [--keyring default] [--approvals 2] [--new-key-file F] [--kdf-ops 3] [--kdf-mem-mib 256]\n"
    "           create a key store (passphrase, or a new 32-byte key file with --new-key-file)\n"
    "  list     [--json]                           keyrings, versions and their status\n"
    "  create   --keyring NAME [--approvals 2]     add a keyring\n"
    "  rotate   [--keyring default]                new primary version for new work\n"
    "  disable  --keyring NAME --version N         no use, new or old, until enabled again\n"
    "  enable   --keyring NAME --version N\n"
    "  destroy  --keyring NAME --version N --yes   wipe the key: all data under it is unrecoverable\n"
    "  policy   --keyring NAME --approvals M [--requester-signs yes|no]\n"
    "           approvals a restore request needs; whether its requester must sign it too (with their\n"
    "           principal key: veil request approve REQ --principal-key; unchanged when not given)\n"
    "  recover  [--accept-loss]                    replace a damaged store file by its backup; with\n"
    "           --accept-loss, also a store file older than its audit log: keep that file (or the backup,\n"
    "           however old) and log every change it lacks as lost\n"
    "common options: --store DIR (or $VEIL_STORE), --key-file F | --passphrase-file F | $VEIL_PASSPHRASE,\n"
    "                --actor NAME (recorded in the audit log)\n";

StatusOr<uint32_t> Approvals(Args& args) {
  VEIL_ASSIGN_OR_RETURN(long long m, args.GetInt("--approvals", 2, 1, 64));
  return static_cast<uint32_t>(m);
}

StatusOr<uint32_t> Version(Args& args) {
  if (!args.Get("--version")) return InvalidArgumentError("--version N is required");
  VEIL_ASSIGN_OR_RETURN(long long v, args.GetInt("--version", 0, 1, 1000000));
  return static_cast<uint32_t>(v);
}

StatusOr<std::string> RequiredKeyring(Args& args) {
  auto k = args.Get("--keyring");
  if (!k) return InvalidArgumentError("--keyring NAME is required");
  return *k;
}

int Init(Args& args) {
  auto opts = ReadStoreOptions(args);
  std::string keyring = args.GetOr("--keyring", "default");
  auto m = Approvals(args);
  auto new_key_file = args.Get("--new-key-file");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!opts.status.ok()) return Fail(opts.status);
  if (!m.ok()) return Fail(m.status());
  StatusOr<keys::Credential> credential = InvalidArgumentError("no credential");
  if (new_key_file) {
    if (opts.key_file || opts.passphrase_file) {
      return Fail(InvalidArgumentError("--new-key-file replaces --key-file and --passphrase-file"));
    }
    if (Status st = keys::Credential::CreateKeyFile(*new_key_file); !st.ok()) return Fail(st);
    credential = keys::Credential::FromKeyFile(*new_key_file);
  } else {
    credential = StoreCredential(opts, /*confirm=*/true);
  }
  if (!credential.ok()) return Fail(credential.status());
  const std::string& dir = opts.dir;
  auto store = KeyStore::Create(dir, *credential, opts.limits, opts.actor, keyring, *m);
  if (!store.ok()) return Fail(store.status());
  auto info = (*store)->Info();
  std::printf("created key store %s in %s\n", info.store_id_hex.c_str(), dir.c_str());
  std::printf("keyring %s: version 1 (primary), restores need %u approvals\n", keyring.c_str(), *m);
  std::printf("audit log key %s\n", info.log_public_key_hex.c_str());
  return 0;
}

int List(Args& args) {
  auto opts = ReadStoreOptions(args);
  bool json = args.Flag("--json");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto store = OpenStore(opts, KeyStore::Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  auto info = (*store)->Info();
  if (json) {
    nlohmann::json doc = {{"store_id", info.store_id_hex},
                          {"generation", info.generation},
                          {"audit_public_key", info.log_public_key_hex},
                          {"keyrings", nlohmann::json::array()}};
    for (const auto& k : info.keyrings) {
      nlohmann::json ring = {{"name", k.name}, {"primary_version", k.primary_version},
                             {"required_approvals", k.required_approvals}, {"requester_signs", k.requester_signs},
                             {"versions", nlohmann::json::array()}};
      for (const auto& v : k.versions) {
        ring["versions"].push_back({{"version", v.version}, {"status", keys::KeyStatusName(v.status)},
                                    {"primary", v.primary}, {"created", IsoTime(v.created_unix)},
                                    {"status_changed", IsoTime(v.status_changed_unix)}});
      }
      doc["keyrings"].push_back(ring);
    }
    PrintJson(doc);
    return 0;
  }
  std::printf("key store %s (generation %llu)\n", info.store_id_hex.c_str(),
              static_cast<unsigned long long>(info.generation));
  for (const auto& k : info.keyrings) {
    std::printf("keyring %s: primary v%u, restores need %u approvals%s\n", k.name.c_str(), k.primary_version,
                k.required_approvals, k.requester_signs ? " and the requester's signature" : "");
    for (const auto& v : k.versions) {
      std::printf("  v%-4u %-9s created %s%s\n", v.version, keys::KeyStatusName(v.status), IsoTime(v.created_unix).c_str(),
                  v.primary ? "  (primary)" : "");
    }
  }
  return 0;
}

int Create(Args& args) {
  auto opts = ReadStoreOptions(args);
  auto keyring = RequiredKeyring(args);
  auto m = Approvals(args);
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!keyring.ok()) return Fail(keyring.status());
  if (!m.ok()) return Fail(m.status());
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  if (Status st = (*store)->CreateKeyring(*keyring, *m); !st.ok()) return Fail(st);
  std::printf("created keyring %s: version 1 (primary), restores need %u approvals\n", keyring->c_str(), *m);
  return 0;
}

int Rotate(Args& args) {
  auto opts = ReadStoreOptions(args);
  std::string keyring = args.GetOr("--keyring", "default");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  auto v = (*store)->Rotate(keyring);
  if (!v.ok()) return Fail(v.status());
  std::printf("rotated %s: primary is now v%u\n", keyring.c_str(), *v);
  return 0;
}

int SetStatus(Args& args, keys::KeyStatus status) {
  auto opts = ReadStoreOptions(args);
  auto keyring = RequiredKeyring(args);
  auto version = Version(args);
  bool yes = args.Flag("--yes");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!keyring.ok()) return Fail(keyring.status());
  if (!version.ok()) return Fail(version.status());
  if (status == keys::KeyStatus::kDestroyed && !yes) {
    return Fail(InvalidArgumentError("destroying a key makes everything sealed under it unrecoverable; add --yes"));
  }
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  if (Status st = (*store)->SetKeyStatus(*keyring, *version, status); !st.ok()) return Fail(st);
  std::printf("%s v%u is now %s\n", keyring->c_str(), *version, keys::KeyStatusName(status));
  return 0;
}

int Disable(Args& args) { return SetStatus(args, keys::KeyStatus::kDisabled); }
int Enable(Args& args) { return SetStatus(args, keys::KeyStatus::kEnabled); }
int Destroy(Args& args) { return SetStatus(args, keys::KeyStatus::kDestroyed); }

int Policy(Args& args) {
  auto opts = ReadStoreOptions(args);
  auto keyring = RequiredKeyring(args);
  auto m = Approvals(args);
  const std::optional<std::string> signs_arg = args.Get("--requester-signs");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!keyring.ok()) return Fail(keyring.status());
  if (!m.ok()) return Fail(m.status());
  std::optional<bool> signs;
  if (signs_arg) {
    if (*signs_arg != "yes" && *signs_arg != "no") return Fail(InvalidArgumentError("--requester-signs takes yes or no"));
    signs = *signs_arg == "yes";
  }
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  if (Status st = (*store)->SetPolicy(*keyring, *m, signs); !st.ok()) return Fail(st);
  const bool now_signs = [&] {
    for (const auto& k : (*store)->Info().keyrings) if (k.name == *keyring) return k.requester_signs;
    return false;
  }();
  std::printf("restores with keyring %s now need %u approvals%s\n", keyring->c_str(), *m,
              now_signs ? " and the requester's own signature" : "");
  return 0;
}

int Recover(Args& args) {
  auto opts = ReadStoreOptions(args);
  keys::RecoverOptions options;
  options.accept_loss = args.Flag("--accept-loss");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!opts.status.ok()) return Fail(opts.status);
  auto credential = StoreCredential(opts, false);
  if (!credential.ok()) return Fail(credential.status());
  std::vector<std::string> lost;
  if (Status st = KeyStore::RecoverFromBackup(opts.dir, *credential, opts.actor, options, &lost); !st.ok()) {
    return Fail(st);
  }
  std::printf("recovered the key store in %s\n", opts.dir.c_str());
  for (const std::string& change : lost) std::printf("lost (logged as failed): %s\n", change.c_str());
  return 0;
}

}  // namespace

int RunKeys(int argc, char** argv) {
  return RunSubcommands(kUsage, argc, argv,
                        {{"init", Init}, {"list", List}, {"create", Create}, {"rotate", Rotate}, {"disable", Disable},
                         {"enable", Enable}, {"destroy", Destroy}, {"policy", Policy}, {"recover", Recover}});
}

}  // namespace veil::cli
