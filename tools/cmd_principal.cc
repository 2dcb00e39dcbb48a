// veil principal: the people (and services) who operate, approve and audit.
#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "output.h"
#include "store_options.h"
#include "veil/keys/principal_key.h"

namespace veil::cli {
namespace {

using keys::KeyStore;

const char* kUsage =
    "usage: veil principal SUBCOMMAND [OPTIONS]\n"
    "  add NAME --role admin|operator|approver|auditor (--key-out FILE | --public-key HEX)\n"
    "           register a principal; --key-out writes a new signing key to FILE, sealed under the\n"
    "           principal's passphrase (--principal-passphrase-file F, $VEIL_PRINCIPAL_PASSPHRASE or a prompt)\n"
    "  list   [--json]\n"
    "  revoke NAME                  the principal's signatures no longer count\n"
    "common options: --store DIR, --key-file F | --passphrase-file F | $VEIL_PASSPHRASE, --actor NAME\n";

StatusOr<std::string> OneName(Args& args) {
  if (args.positionals().size() != 1) return InvalidArgumentError("give exactly one principal NAME");
  return args.positionals()[0];
}

int Add(Args& args) {
  auto opts = ReadStoreOptions(args);
  auto role_name = args.Get("--role");
  auto key_out = args.Get("--key-out");
  auto public_hex = args.Get("--public-key");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto name = OneName(args);
  if (!name.ok()) return Fail(name.status());
  if (!role_name) return Fail(InvalidArgumentError("--role is required"));
  auto role = keys::ParseRole(*role_name);
  if (!role.ok()) return Fail(role.status());
  if (static_cast<bool>(key_out) == static_cast<bool>(public_hex)) {
    return Fail(InvalidArgumentError("give either --key-out FILE or --public-key HEX"));
  }
  // Open (and lock) the store first: a wrong store passphrase must not leave a key file behind.
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  for (const auto& p : (*store)->Info().principals) {  // before any passphrase prompt or key file
    if (p.name == *name) return Fail(AlreadyExistsError("principal '" + *name + "' already exists"));
  }
  std::string public_key;
  if (key_out) {
    auto credential = PrincipalCredential(opts, *name, /*confirm=*/true);
    if (!credential.ok()) return Fail(credential.status());
    auto key = keys::PrincipalKey::Generate(*name);
    if (Status st = key.Save(*key_out, *credential, opts.limits); !st.ok()) return Fail(st);
    public_key = key.public_key();
  } else {
    auto pk = keys::FromHex(*public_hex);
    if (!pk.ok()) return Fail(pk.status());
    public_key = *pk;
  }
  if (Status st = (*store)->AddPrincipal(*name, *role, public_key); !st.ok()) {
    // Refused before the store changed: the key file made above serves nothing. A failure while
    // saving may come after the store file was replaced: the key is kept, it may be the principal's.
    const bool refused = st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kAlreadyExists;
    if (key_out && refused) std::remove(key_out->c_str());
    if (key_out && !refused) st = st.WithContext("the signing key stays in " + *key_out + "; see `veil principal list`");
    return Fail(st);
  }
  std::printf("added %s %s, public key %s%s%s\n", keys::RoleName(*role), name->c_str(), keys::ToHex(public_key).c_str(),
              key_out ? ", signing key in " : "", key_out ? key_out->c_str() : "");
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
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& p : info.principals) {
      doc.push_back({{"name", p.name}, {"role", keys::RoleName(p.role)}, {"public_key", p.public_key_hex},
                     {"revoked", p.revoked}, {"added", IsoTime(p.added_unix)}});
      if (p.revoked) doc.back()["revoked_at"] = IsoTime(p.revoked_unix);
    }
    PrintJson(doc);
    return 0;
  }
  if (info.principals.empty()) std::printf("no principals (add one with `veil principal add`)\n");
  for (const auto& p : info.principals) {
    std::printf("%-16s %-9s %s%s\n", p.name.c_str(), keys::RoleName(p.role), p.public_key_hex.c_str(),
                p.revoked ? "  REVOKED" : "");
  }
  return 0;
}

int Revoke(Args& args) {
  auto opts = ReadStoreOptions(args);
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto name = OneName(args);
  if (!name.ok()) return Fail(name.status());
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  if (Status st = (*store)->RevokePrincipal(*name); !st.ok()) return Fail(st);
  std::printf("revoked %s\n", name->c_str());
  return 0;
}

}  // namespace

int RunPrincipal(int argc, char** argv) {
  return RunSubcommands(kUsage, argc, argv, {{"add", Add}, {"list", List}, {"revoke", Revoke}});
}

}  // namespace veil::cli
