#include "cli.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::cli {

Args::Args(int argc, char** argv, std::set<std::string> boolean_flags) : flags_(std::move(boolean_flags)) {
  bool only_positionals = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--" && !only_positionals) {
      only_positionals = true;
      continue;
    }
    const bool short_option = a.size() == 2 && a[0] == '-' && std::isalpha(static_cast<unsigned char>(a[1]));
    if (only_positionals || (!short_option && (a.size() < 3 || a.rfind("--", 0) != 0))) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (flags_.count(name)) {
      if (has_value) parse_status_ = InvalidArgumentError("option " + name + " takes no value");
      values_.emplace(name, "1");
    } else {
      if (!has_value) {
        if (i + 1 >= argc) {
          parse_status_ = InvalidArgumentError("option " + name + " needs a value");
          continue;
        }
        value = argv[++i];
      }
      values_.emplace(name, value);
    }
    order_.push_back(name);
  }
}

std::optional<std::string> Args::Get(const std::string& name) {
  asked_.insert(name);
  auto range = values_.equal_range(name);
  if (range.first == range.second) return std::nullopt;
  return std::prev(range.second)->second;
}

std::string Args::GetOr(const std::string& name, const std::string& fallback) {
  auto v = Get(name);
  return v ? *v : fallback;
}

StatusOr<long long> Args::GetInt(const std::string& name, long long fallback, long long lo, long long hi) {
  auto v = Get(name);
  if (!v) return fallback;
  VEIL_ASSIGN_OR_RETURN(int64_t x, ParseInteger(*v, "option " + name, lo, hi));
  return static_cast<long long>(x);
}

StatusOr<double> Args::GetNumber(const std::string& name, double fallback, double lo, double hi) {
  auto v = Get(name);
  if (!v) return fallback;
  return ParseNumber(*v, "option " + name, [lo, hi](double x, const std::string& what) { return CheckInRange(x, lo, hi, what); });
}

void Args::Read(const std::string& name, int* out, long long lo, long long hi) {
  auto v = GetInt(name, *out, lo, hi);
  if (v.ok()) *out = static_cast<int>(*v);
  else if (read_status_.ok()) read_status_ = v.status();
}

void Args::Read(const std::string& name, uint64_t* out, long long lo, long long hi) {
  auto v = GetInt(name, static_cast<long long>(*out), lo, hi);
  if (v.ok()) *out = static_cast<uint64_t>(*v);
  else if (read_status_.ok()) read_status_ = v.status();
}

void Args::Read(const std::string& name, double* out, double lo, double hi) {
  auto v = GetNumber(name, *out, lo, hi);
  if (v.ok()) *out = *v;
  else if (read_status_.ok()) read_status_ = v.status();
}

std::vector<std::string> Args::GetAll(const std::string& name) {
  asked_.insert(name);
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

bool Args::Flag(const std::string& name) {
  asked_.insert(name);
  return values_.count(name) > 0;
}

Status Args::Finish() const {
  if (!parse_status_.ok()) return parse_status_;
  if (!read_status_.ok()) return read_status_;
  for (const auto& name : order_) {
    if (!asked_.count(name)) return InvalidArgumentError("unknown option " + name + " (see --help)");
  }
  return Status::Ok();
}

int RunSubcommands(const char* usage, int argc, char** argv, std::initializer_list<Subcommand> table) {
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h") || !std::strcmp(argv[0], "help")) {
    std::fputs(usage, argc < 1 ? stderr : stdout);
    return argc < 1 ? static_cast<int>(StatusCode::kInvalidArgument) : 0;
  }
  for (const auto& sub : table) {
    if (std::strcmp(argv[0], sub.name) != 0) continue;
    Args args(argc - 1, argv + 1, {"--json", "--help", "--yes", "--offline", "--accept-loss"});
    if (args.Flag("--help")) {
      std::fputs(usage, stdout);
      return 0;
    }
    return sub.run(args);
  }
  std::fputs(usage, stderr);
  return Fail(InvalidArgumentError(std::string("unknown subcommand '") + argv[0] + "'"));
}

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto at = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = at(i);
    if (const size_t control = keys::DisplayControlLength(text, i)) {  // C0, C1, bidi controls, separators
      out += '?';
      i += control;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence is kept; any other byte above 0x7F (0x9B is CSI on an 8-bit
    // terminal) becomes '?'.
    const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 0) : c >= 0xC2 ? 2 : 0;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (at(i + k) & 0xC0) == 0x80;
    if (ok && ((c == 0xE0 && at(i + 1) < 0xA0) || (c == 0xF0 && at(i + 1) < 0x90) || (c == 0xF4 && at(i + 1) > 0x8F))) ok = false;
    if (ok) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "veil: %s\n", OneLine(status.ToString()).c_str());
  return static_cast<int>(status.code());
}

Status WriteFileAtomic(const std::string& path, const std::string& bytes, bool overwrite) {
  return veil::keys::WriteFileAtomic(path, bytes, overwrite, 0644);
}

void KeepFreedHeapForReuse() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // glibc's largest: blocks below come from the heap...
  mallopt(M_TRIM_THRESHOLD, 512 << 20);  // ...whose free top is kept up to 512 MiB
#endif
}

}  // namespace veil::cli
