#include "output.h"

#include <cstdio>

#include "veil/keys/restore_request.h"

namespace veil::cli {

std::string IsoTime(int64_t unix_seconds) { return keys::IsoTimeUtc(unix_seconds); }

// Invalid UTF-8 (a name from an untrusted file) is replaced, not thrown on. Everything past ASCII
// is escaped (\uXXXX): a C1 control or a bidirectional override in a name or a manifest's text then
// reaches a terminal as text, not as an escape sequence, and a JSON reader gets the same string.
void PrintJson(const nlohmann::json& doc) {
  std::printf("%s\n", doc.dump(2, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace veil::cli
