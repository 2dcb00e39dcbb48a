#include "output.h"

#include <cstdio>

#include "veil/keys/restore_request.h"

namespace veil::cli {

std::string IsoTime(int64_t unix_seconds) { return keys::IsoTimeUtc(unix_seconds); }

// Invalid UTF-8 (a name from an untrusted file) is replaced, not thrown on.
void PrintJson(const nlohmann::json& doc) {
  std::printf("%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace veil::cli
