#include "output.h"

#include <cstdio>
#include <ctime>

namespace veil::cli {

std::string IsoTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Invalid UTF-8 (a name from an untrusted file) is replaced, not thrown on.
void PrintJson(const nlohmann::json& doc) {
  std::printf("%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace veil::cli
