// veil request: restore requests, their approvals, and their authorization by the key store.
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "output.h"
#include "store_options.h"
#include "veil/keys/fs.h"
#include "veil/keys/principal_key.h"
#include "veil/keys/restore_request.h"

namespace veil::cli {
namespace {

using keys::KeyStore;
using keys::RestoreRequest;

const char* kUsage =
    "usage: veil request SUBCOMMAND [OPTIONS]\n"
    "  create --requester NAME --case ID --purpose TEXT (--target HEX64 | --target-file FILE)...\n"
    "         [--keyring default] [--key-version N] [--expires-in 24h] -o REQUEST\n"
    "         a request to restore the targets (the SHA-256 of each anonymized file); logged\n"
    "  approve REQUEST --principal-key FILE [-o OUT] [--offline]\n"
    "         sign it as that approver (in place by default); logged, or with --offline signed without\n"
    "         the key store (no store credential needed): the authorization's record names it. With\n"
    "         the requester's own key: their signature, which proves who asked (never an approval;\n"
    "         keys policy --requester-signs yes demands it)\n"
    "  show REQUEST [--json]                          what it asks, and who approved\n"
    "  authorize REQUEST [--json]                     the key store's decision, granted or denied; logged\n"
    "common options: --store DIR, --key-file F | --passphrase-file F | $VEIL_PASSPHRASE, --actor NAME,\n"
    "                --principal-passphrase-file F | $VEIL_PRINCIPAL_PASSPHRASE\n";

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "90s", "30m", "24h", "7d"
StatusOr<int64_t> ParseDuration(const std::string& text) {
  if (text.size() < 2) return InvalidArgumentError("duration must look like 30m, 24h or 7d");
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return InvalidArgumentError("duration must end in s, m, h or d");
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || n > 1000000) return InvalidArgumentError("duration must look like 30m, 24h or 7d");
    n = n * 10 + (text[i] - '0');
  }
  if (n == 0 || n * unit > keys::kMaxRequestLifetimeSeconds) return InvalidArgumentError("duration must be from 1s to 366d");
  return n * unit;
}

StatusOr<RestoreRequest> LoadRequest(const std::string& path) {
  VEIL_ASSIGN_OR_RETURN(std::string bytes, keys::ReadFile(path, 1u << 20));
  auto request = RestoreRequest::Parse(bytes);
  if (!request.ok()) return request.status().WithContext(path);
  return request;
}

StatusOr<std::string> OneRequestPath(Args& args) {
  if (args.positionals().size() != 1) return InvalidArgumentError("give exactly one REQUEST file");
  return args.positionals()[0];
}

nlohmann::json ToJson(const keys::RestoreRequestInfo& i) {
  nlohmann::json j = {{"request_id", i.request_id_hex}, {"store_id", i.store_id_hex}, {"keyring", i.keyring},
                      {"key_version", i.key_version},   {"targets", i.targets_hex},   {"case_id", i.case_id},
                      {"purpose", i.purpose},           {"requester", i.requester},   {"created", IsoTime(i.created_unix)},
                      {"expires", IsoTime(i.expires_unix)}, {"digest", i.digest_hex}, {"approvals", nlohmann::json::array()}};
  for (const auto& a : i.approvals) {
    j["approvals"].push_back({{"approver", a.approver}, {"signed", IsoTime(a.signed_unix)}, {"requester", a.approver == i.requester}});
  }
  return j;
}

int Create(Args& args) {
  auto opts = ReadStoreOptions(args);
  keys::RestoreRequestSpec spec;
  spec.keyring = args.GetOr("--keyring", "default");
  spec.requester = args.GetOr("--requester", "");
  spec.case_id = args.GetOr("--case", "");
  spec.purpose = args.GetOr("--purpose", "");
  auto version = args.GetInt("--key-version", 0, 0, 1000000);
  auto expires_in = ParseDuration(args.GetOr("--expires-in", "24h"));
  auto hex_targets = args.GetAll("--target");
  auto file_targets = args.GetAll("--target-file");
  auto out = args.Get("-o");
  if (!out) out = args.Get("--output");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!opts.status.ok()) return Fail(opts.status);
  if (!version.ok()) return Fail(version.status());
  if (!expires_in.ok()) return Fail(expires_in.status());
  if (!out) return Fail(InvalidArgumentError("-o REQUEST (the file to write) is required"));
  spec.key_version = static_cast<uint32_t>(*version);
  for (const auto& h : hex_targets) {
    auto d = keys::FromHex(h);
    if (!d.ok() || d->size() != 32) return Fail(InvalidArgumentError("--target must be 64 hex digits"));
    spec.targets.push_back(*d);
  }
  for (const auto& f : file_targets) {
    auto digest = keys::Sha256File(f);  // videos may be large: hashed in pieces
    if (!digest.ok()) return Fail(digest.status());
    spec.targets.push_back(*digest);
  }
  int64_t now = Now();
  spec.expires_unix = now + *expires_in;
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  auto request = (*store)->CreateRequest(spec, now);
  if (!request.ok()) return Fail(request.status());
  if (Status st = keys::WriteFileAtomic(*out, request->Serialize(), /*overwrite=*/false, 0644); !st.ok()) return Fail(st);
  std::printf("request %s for case %s written to %s; it expires %s and needs approvals\n",
              request->info().request_id_hex.c_str(), spec.case_id.c_str(), out->c_str(),
              IsoTime(spec.expires_unix).c_str());
  return 0;
}

int Approve(Args& args) {
  auto opts = ReadStoreOptions(args);
  auto key_path = args.Get("--principal-key");
  const bool offline = args.Flag("--offline");
  auto out = args.Get("-o");
  if (!out) out = args.Get("--output");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto path = OneRequestPath(args);
  if (!path.ok()) return Fail(path.status());
  if (!key_path) return Fail(InvalidArgumentError("--principal-key FILE is required"));
  auto request = LoadRequest(*path);
  if (!request.ok()) return Fail(request.status());
  auto credential = PrincipalCredential(opts, *key_path, false);
  if (!credential.ok()) return Fail(credential.status());
  auto key = keys::PrincipalKey::Load(*key_path, *credential);
  if (!key.ok()) return Fail(key.status());
  const int64_t now = Now();
  // Online, the key store logs the refusal (RecordApproval); offline, it is refused here.
  if (offline && now >= request->info().expires_unix) {
    return Fail(DeadlineExceededError("the request expired at " + IsoTime(request->info().expires_unix) +
                                      "; it can no longer be approved"));
  }
  bool again = false;  // a second approval by the same principal replaces the first (still one)
  for (const auto& a : request->approvals()) again |= a.approver == key->name();
  request->Approve(*key, now);
  if (!offline) {
    auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
    if (!store.ok()) return Fail(store.status());
    if (Status st = (*store)->RecordApproval(*request, key->name(), now); !st.ok()) return Fail(st);
  }
  const std::string target = out ? *out : *path;
  if (Status st = keys::WriteFileAtomic(target, request->Serialize(), /*overwrite=*/!out, 0644); !st.ok()) return Fail(st);
  size_t approvals = 0;  // entries by others than the requester
  for (const auto& a : request->approvals()) approvals += a.approver != request->info().requester;
  const bool requester = key->name() == request->info().requester;
  std::printf("%s %s request %s (%zu approval%s now%s)\n", OneLine(key->name()).c_str(),
              requester ? "signed, as its requester (not an approval)," : "approved", request->info().request_id_hex.c_str(),
              approvals, approvals == 1 ? "" : "s", again ? "; it replaces their earlier signature" : "");
  return 0;
}

int Show(Args& args) {
  bool json = args.Flag("--json");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto path = OneRequestPath(args);
  if (!path.ok()) return Fail(path.status());
  auto request = LoadRequest(*path);
  if (!request.ok()) return Fail(request.status());
  const auto& i = request->info();
  if (json) {
    PrintJson(ToJson(i));
    return 0;
  }
  std::printf("request   %s\nkeyring   %s%s\ncase      %s\npurpose   %s\nrequester %s\ncreated   %s\nexpires   %s%s\n",
              i.request_id_hex.c_str(), i.keyring.c_str(),
              i.key_version ? (" v" + std::to_string(i.key_version)).c_str() : " (any enabled version)",
              i.case_id.c_str(), i.purpose.c_str(), i.requester.c_str(), IsoTime(i.created_unix).c_str(),
              IsoTime(i.expires_unix).c_str(), Now() >= i.expires_unix ? "  (EXPIRED)" : "");
  for (const auto& t : i.targets_hex) std::printf("target    %s\n", t.c_str());
  bool approved = false;
  for (const auto& a : i.approvals) {
    const bool own = a.approver == i.requester;
    approved |= !own;
    std::printf("%s by %s at %s\n", own ? "signed    " : "approved  ", a.approver.c_str(), IsoTime(a.signed_unix).c_str());
  }
  if (!approved) std::printf("approved  by nobody yet\n");
  return 0;
}

int Authorize(Args& args) {
  auto opts = ReadStoreOptions(args);
  bool json = args.Flag("--json");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto path = OneRequestPath(args);
  if (!path.ok()) return Fail(path.status());
  auto request = LoadRequest(*path);
  if (!request.ok()) return Fail(request.status());
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  auto grant = (*store)->AuthorizeRestore(*request, Now());
  if (json) {
    nlohmann::json doc = {{"request_id", request->info().request_id_hex},
                          {"granted", grant.ok()},
                          {"reason", grant.ok() ? "" : grant.status().message()}};
    PrintJson(doc);
  }
  if (!grant.ok()) return Fail(grant.status());
  if (!json) {
    std::printf("granted: request %s may restore %zu target(s) with keyring %s (logged)\n",
                request->info().request_id_hex.c_str(), request->targets().size(), grant->keyring().c_str());
  }
  return 0;
}

}  // namespace

int RunRequest(int argc, char** argv) {
  return RunSubcommands(kUsage, argc, argv,
                        {{"create", Create}, {"approve", Approve}, {"show", Show}, {"authorize", Authorize}});
}

}  // namespace veil::cli
