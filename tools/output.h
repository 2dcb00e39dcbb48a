// Printing helpers for the subcommands: times, and data as text or JSON (--json).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace veil::cli {

// "2026-11-23T14:51:00Z" (UTC).
std::string IsoTime(int64_t unix_seconds);
// Prints the JSON document on stdout, followed by a newline.
void PrintJson(const nlohmann::json& doc);

}  // namespace veil::cli
