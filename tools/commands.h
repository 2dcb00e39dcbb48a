// Entry points of the `veil` subcommands. Each gets the arguments after its own name and returns
// the process exit code (a veil::StatusCode value; see README.md).
#pragma once

namespace veil::cli {

int RunKeys(int argc, char** argv);
int RunPrincipal(int argc, char** argv);
int RunRequest(int argc, char** argv);
int RunAudit(int argc, char** argv);
#ifdef VEIL_HAVE_ENGINE
int RunDetect(int argc, char** argv);
int RunAnonymize(int argc, char** argv);
int RunRestore(int argc, char** argv);
int RunInspect(int argc, char** argv);
int RunCamera(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunEval(int argc, char** argv);
#endif

}  // namespace veil::cli
