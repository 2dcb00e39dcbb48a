// veil audit: read, verify and checkpoint the tamper-evident audit log.
#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "output.h"
#include "store_options.h"
#include "veil/keys/audit_log.h"
#include "veil/keys/fs.h"

namespace veil::cli {
namespace {

using keys::KeyStore;

const char* kUsage =
    "usage: veil audit SUBCOMMAND [OPTIONS]\n"
    "  show   [--json] [--public-key HEX]        verify, then list every record\n"
    "  verify [--checkpoint FILE] [--public-key HEX] [--json]\n"
    "         check every hash link and signature (no passphrase needed); with a checkpoint, also\n"
    "         that no record it covered was removed or rewritten; always against the store's\n"
    "         head file (audit.log.head, rewritten after every append) when there is one\n"
    "  checkpoint -o FILE                        export a signed checkpoint for outside witnesses (logged)\n"
    "The log key is taken from --public-key, else from the key store's clear header (--store DIR).\n";

struct VerifyInputs {
  std::string log_path;
  keys::AuditVerifyOptions options;
  Status head_read;  // a head file there that is no head file: the verification fails, after listing
};

StatusOr<VerifyInputs> ReadVerifyInputs(const StoreOptions& opts, const std::optional<std::string>& public_hex,
                                        const std::optional<std::string>& checkpoint_path) {
  VerifyInputs in;
  in.log_path = opts.dir + "/" + KeyStore::kAuditFile;
  if (public_hex) {
    VEIL_ASSIGN_OR_RETURN(in.options.expected_public_key, keys::FromHex(*public_hex));
    if (in.options.expected_public_key.size() != 32) return InvalidArgumentError("--public-key must be 64 hex digits");
  } else {
    auto pk = KeyStore::PeekLogPublicKey(opts.dir);
    if (pk.ok()) in.options.expected_public_key = *pk;
    else if (pk.status().code() != StatusCode::kNotFound) return pk.status();
  }
  if (checkpoint_path) {
    VEIL_ASSIGN_OR_RETURN(in.options.checkpoint, keys::ReadFile(*checkpoint_path, 4096));
  }
  // The store's head file, read before the log: an append writes the log first, so the head read
  // here never covers more than the log read after it.
  auto head = keys::ReadAuditHeadFile(opts.dir + "/" + KeyStore::kAuditHeadFile);
  if (head.ok()) in.options.head = std::move(*head);
  else in.head_read = head.status();
  return in;
}

// VerifyAuditLog, failing also for a damaged head file (the records that verified still listed).
StatusOr<keys::AuditLogSummary> VerifyLog(const VerifyInputs& in, std::vector<keys::AuditEntry>* entries = nullptr) {
  auto summary = keys::VerifyAuditLog(in.log_path, in.options, entries);
  if (summary.ok() && !in.head_read.ok()) return in.head_read;
  return summary;
}

int Show(Args& args) {
  auto opts = ReadStoreOptions(args);
  bool json = args.Flag("--json");
  auto public_hex = args.Get("--public-key");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto in = ReadVerifyInputs(opts, public_hex, std::nullopt);
  if (!in.ok()) return Fail(in.status());
  std::vector<keys::AuditEntry> entries;
  auto summary = VerifyLog(*in, &entries);
  if (json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& e : entries) {
      nlohmann::json j = {{"sequence", e.sequence},
                          {"time_ms", e.time_unix_ms},
                          {"time", IsoTime(e.time_unix_ms / 1000)},
                          {"actor", e.event.actor},
                          {"action", keys::AuditActionName(e.event.action)},
                          {"outcome", keys::AuditOutcomeName(e.event.outcome)},
                          {"target", e.event.target},
                          {"reason", e.event.reason},
                          {"hash", e.hash_hex}};
      if (!e.event.keyring.empty()) j["key"] = {{"keyring", e.event.keyring}, {"version", e.event.key_version}};
      nlohmann::json digests = nlohmann::json::array();
      for (const auto& d : e.event.target_digests) digests.push_back(keys::ToHex(d));
      j["target_digests"] = digests;
      doc.push_back(j);
    }
    PrintJson(doc);
  } else {
    for (const auto& e : entries) {
      std::string key = e.event.keyring.empty() ? ""
                        : " key=" + e.event.keyring +
                              (e.event.key_version ? " v" + std::to_string(e.event.key_version) : std::string());
      std::printf("#%-4llu %s %-10s %-22s %-8s %s%s%s%s\n", static_cast<unsigned long long>(e.sequence),
                  IsoTime(e.time_unix_ms / 1000).c_str(), OneLine(e.event.actor).c_str(), keys::AuditActionName(e.event.action),
                  keys::AuditOutcomeName(e.event.outcome), OneLine(e.event.target).c_str(), OneLine(key).c_str(),
                  e.event.reason.empty() ? "" : "  ", OneLine(e.event.reason).c_str());
    }
  }
  if (!summary.ok()) return Fail(summary.status());
  return 0;
}

int Verify(Args& args) {
  auto opts = ReadStoreOptions(args);
  bool json = args.Flag("--json");
  auto public_hex = args.Get("--public-key");
  auto checkpoint = args.Get("--checkpoint");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  auto in = ReadVerifyInputs(opts, public_hex, checkpoint);
  if (!in.ok()) return Fail(in.status());
  auto s = VerifyLog(*in);
  if (json) {
    nlohmann::json doc = {{"valid", s.ok()}, {"head_file", !in->options.head.empty() || !in->head_read.ok()}};
    if (s.ok()) {
      doc["records"] = s->record_count;
      doc["head_hash"] = s->head_hash_hex;
      doc["public_key"] = s->public_key_hex;
      doc["store_id"] = s->store_id_hex;
      if (checkpoint) doc["checkpoint_records"] = s->checkpoint_count;
      if (!in->options.head.empty()) doc["head_file_records"] = s->head_count;
    } else {
      doc["error"] = s.status().message();
    }
    PrintJson(doc);
  }
  if (!s.ok()) return Fail(s.status());
  if (!json) {
    std::printf("audit log OK: %llu records, every link and signature verified; head %s\n",
                static_cast<unsigned long long>(s->record_count), s->head_hash_hex.c_str());
    if (checkpoint) {
      std::printf("it extends the checkpoint of %llu records\n", static_cast<unsigned long long>(s->checkpoint_count));
    }
    if (!in->options.head.empty()) {
      std::printf("it extends the store's head file (%s, %llu records)\n", KeyStore::kAuditHeadFile,
                  static_cast<unsigned long long>(s->head_count));
    } else {
      std::printf("no head file (%s): records cut from the log's end would not show here\n", KeyStore::kAuditHeadFile);
    }
  }
  return 0;
}

int Checkpoint(Args& args) {
  auto opts = ReadStoreOptions(args);
  auto out = args.Get("-o");
  if (!out) out = args.Get("--output");
  if (Status st = args.Finish(); !st.ok()) return Fail(st);
  if (!out) return Fail(InvalidArgumentError("-o FILE is required"));
  auto store = OpenStore(opts, KeyStore::Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  auto cp = (*store)->ExportCheckpoint();
  if (!cp.ok()) return Fail(cp.status());
  if (Status st = keys::WriteFileAtomic(*out, *cp, /*overwrite=*/false, 0644); !st.ok()) return Fail(st);
  auto info = keys::ReadCheckpoint(*cp);
  if (!info.ok()) return Fail(info.status());
  std::printf("checkpoint of %llu records (head %s) written to %s\n", static_cast<unsigned long long>(info->record_count),
              info->head_hash_hex.c_str(), out->c_str());
  return 0;
}

}  // namespace

int RunAudit(int argc, char** argv) {
  return RunSubcommands(kUsage, argc, argv, {{"show", Show}, {"verify", Verify}, {"checkpoint", Checkpoint}});
}

}  // namespace veil::cli
