// Small helpers shared by the `veil` subcommands: argument parsing, errors and exit codes.
// Only programs print; libraries return Status.
#pragma once

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "veil/status.h"

namespace veil::cli {

// ASCII lower case (file extensions, option values).
inline std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses "--name value", "--name=value", boolean "--flag" and positionals.
// Names listed in `boolean_flags` take no value; every other "--name" takes one.
class Args {
 public:
  Args(int argc, char** argv, std::set<std::string> boolean_flags);

  // The value of an option, if given (last one wins).
  std::optional<std::string> Get(const std::string& name);
  std::string GetOr(const std::string& name, const std::string& fallback);
  // Parses an integer option; InvalidArgument when it is not a number in [lo, hi].
  StatusOr<long long> GetInt(const std::string& name, long long fallback, long long lo, long long hi);
  // Parses a decimal option; InvalidArgument when it is not a number in [lo, hi].
  StatusOr<double> GetNumber(const std::string& name, double fallback, double lo, double hi);
  // Reads a number option in [lo, hi] into *out, whose current value is the default. A bad value
  // leaves *out as it was and is kept: Finish() returns the first one.
  void Read(const std::string& name, int* out, long long lo, long long hi);
  void Read(const std::string& name, uint64_t* out, long long lo, long long hi);
  void Read(const std::string& name, double* out, double lo, double hi);
  // Every value of a repeatable option, in order.
  std::vector<std::string> GetAll(const std::string& name);
  bool Flag(const std::string& name);
  const std::vector<std::string>& positionals() const { return positionals_; }
  // The first bad value Read() met, else InvalidArgument naming the first option that was given but
  // never asked for.
  Status Finish() const;
  const Status& parse_status() const { return parse_status_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> order_;
  std::set<std::string> flags_;
  std::set<std::string> asked_;
  std::vector<std::string> positionals_;
  Status parse_status_;
  Status read_status_;
};

// A subcommand of a group ("veil keys rotate"): gets the parsed options after its name.
struct Subcommand {
  const char* name;
  int (*run)(Args& args);
};

// Runs argv[0] of `argc/argv` from `table`; prints `usage` for --help, no or an unknown name.
// The boolean flags of subcommands: --json, --help, --yes, --offline and --accept-loss (others
// refuse what they do not ask for).
int RunSubcommands(const char* usage, int argc, char** argv, std::initializer_list<Subcommand> table);

// Prints "veil: <message>" on one line to stderr and returns the status code as exit code.
int Fail(const Status& status);
// `text` (an error naming a file, say) safe for one line of a terminal: control characters (C0,
// DEL, C1 as UTF-8) become '?', so a file name cannot add lines or move the cursor.
std::string OneLine(std::string_view text);

// Programs that run the networks call this first: glibc's malloc then keeps freed blocks of up to
// 32 MiB for reuse instead of handing them back to the kernel and faulting fresh pages in for the
// next frame's tensors (measured 2026-12-06, `veil bench`: the tiny detector 13-19 -> 10-11 ms
// per frame, batch photos 1.45 -> 1.54-1.64/s, peak memory about the same). A process-wide
// setting, so a program's choice, never the library's. No effect without glibc.
void KeepFreedHeapForReuse();

// Writes bytes to `path` atomically (temporary file in the same folder, fsync, rename). Refuses
// to replace an existing file unless `overwrite`.
Status WriteFileAtomic(const std::string& path, const std::string& bytes, bool overwrite);

}  // namespace veil::cli
