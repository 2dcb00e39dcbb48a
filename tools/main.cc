// veil: invertible face anonymization. `veil help` lists the subcommands.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include <google/protobuf/stubs/logging.h>
#ifdef VEIL_HAVE_ENGINE
#include <opencv2/core/utils/logger.hpp>
#endif

#include "cli.h"
#include "commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"keys", veil::cli::RunKeys, "init | list | rotate | disable | enable | destroy | policy  (key store)"},
    {"principal", veil::cli::RunPrincipal, "add | list | revoke  (people who may approve or operate)"},
    {"request", veil::cli::RunRequest, "create | approve | show | authorize  (restore requests)"},
    {"audit", veil::cli::RunAudit, "show | verify | checkpoint  (tamper-evident audit log)"},
#ifdef VEIL_HAVE_ENGINE
    {"anonymize", veil::cli::RunAnonymize, "INPUT... -o OUT  (replace every face; manifest and sealed originals)"},
    {"restore", veil::cli::RunRestore, "INPUT --request REQ -o OUT  (authorized, audited, exact restore)"},
    {"inspect", veil::cli::RunInspect, "INPUT  (what Veil did to an image or video; whether it was edited since)"},
    {"camera", veil::cli::RunCamera, "[--device N | --input VIDEO]  (live anonymized stream, preview or file)"},
    {"bench", veil::cli::RunBench, "[--iters N] [--json]  (camera fps per stage, photos/s, restores/s, memory)"},
    {"eval", veil::cli::RunEval, "--dataset DIR | --images DIR  (measure the identity models)"},
    {"detect", veil::cli::RunDetect, "IMAGE...  (find faces and landmarks)"},
#endif
};

void PrintUsage(FILE* out) {
  std::fprintf(out, "usage: veil COMMAND [ARGS...]   (veil COMMAND --help for details)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "  %-10s %s\n", "version", "print the version");
}

}  // namespace

int main(int argc, char** argv) {
  // Only this program prints; protobuf's own log lines on malformed input would duplicate (and
  // garble) the one-line errors the commands give.
  google::protobuf::SetLogHandler(nullptr);
  veil::cli::KeepFreedHeapForReuse();
#ifdef VEIL_HAVE_ENGINE
  // Likewise OpenCV's warnings about undecodable files (the commands report those themselves).
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
#endif
  if (argc < 2 || !std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "version") || !std::strcmp(argv[1], "--version")) {
    std::printf("veil %s\n", VEIL_VERSION);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const std::bad_alloc&) {  // a hostile input's last line of defence: one line, no abort
      std::fprintf(stderr, "veil: too large: out of memory\n");
      return static_cast<int>(veil::StatusCode::kResourceExhausted);
    }
  }
  std::fprintf(stderr, "veil: invalid argument: unknown command '%s' (see veil help)\n", argv[1]);
  return 2;
}
