#include "veil/status.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace veil {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInternal: return "internal error";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "i/o error";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kDataLoss: return "corrupt data";
    case StatusCode::kPermissionDenied: return "permission denied";
    case StatusCode::kFailedPrecondition: return "failed precondition";
    case StatusCode::kDeadlineExceeded: return "expired";
    case StatusCode::kAlreadyExists: return "already exists";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kResourceExhausted: return "too large";
    case StatusCode::kCancelled: return "interrupted";
    case StatusCode::kEdited: return "edited";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

Status CheckFormatVersion(const std::string& what, uint64_t found, uint64_t current) {
  if (found == current) return Status::Ok();
  if (found == 0) return DataLossError(what + " has no format version: it is empty, damaged or not a Veil file");
  return UnsupportedError(what + " format version " + std::to_string(found) + " is not supported (this build reads version " +
                          std::to_string(current) + ")");
}

Status CheckInRange(double value, double lo, double hi, const std::string& what) {
  if (value >= lo && value <= hi) return Status::Ok();
  char range[64];
  std::snprintf(range, sizeof(range), "[%g, %g]", lo, hi);
  return InvalidArgumentError(what + " must be a number in " + range);
}

StatusOr<double> ParseNumber(const std::string& text, const std::string& what,
                             const std::function<Status(double value, const std::string& what)>& check) {
  char* end = nullptr;
  double x = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') x = std::nan("");
  if (Status st = check(x, what); !st.ok()) return st;
  return x;
}

StatusOr<int64_t> ParseInteger(const std::string& text, const std::string& what, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(text.c_str(), &end, 10);
  const bool digits = !text.empty() && std::isspace(static_cast<unsigned char>(text[0])) == 0;
  if (!digits || *end != '\0' || errno != 0 || x < lo || x > hi) {
    return InvalidArgumentError(what + " must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(x);
}

}  // namespace veil
