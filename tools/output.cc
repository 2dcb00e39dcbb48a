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

void PrintJson(const nlohmann::json& doc) { std::printf("%s\n", doc.dump(2).c_str()); }

}  // namespace veil::cli
