// A small Status / StatusOr for everything that parses untrusted bytes or can be refused.
//
// Each code is also the exit code of the `veil` program (documented in README.md), so a
// script can tell a wrong passphrase from a tampered file without reading the message.
// Messages are one line, say what to do, and never contain secret material.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace veil {

enum class StatusCode : int {
  kOk = 0,
  kInternal = 1,            // a bug or an unexpected system failure
  kInvalidArgument = 2,     // bad usage or malformed input (request, option, image)
  kNotFound = 3,            // a file, keyring, principal or version that does not exist
  kIoError = 4,             // reading or writing failed (disk full, permissions)
  kUnauthenticated = 5,     // wrong passphrase or key file; signature does not verify
  kDataLoss = 6,            // corrupt, truncated or tampered data
  kPermissionDenied = 7,    // authorization refused (approvals, roles)
  kFailedPrecondition = 8,  // key disabled or destroyed, principal revoked, state forbids it
  kDeadlineExceeded = 9,    // a restore request has expired
  kAlreadyExists = 10,      // name taken, output exists
  kUnsupported = 11,        // unknown format version or feature
  kResourceExhausted = 12,  // input too large (e.g. image dimensions)
  kCancelled = 13,          // stopped on request (SIGINT, SIGTERM); nothing half-written remains
  kEdited = 14,             // an image or video edited after anonymization: its pixels no longer match
                            // its (intact) manifest
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code-name: message"
  std::string ToString() const;
  // Prefixes the message with context ("opening key store: ...").
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status UnauthenticatedError(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status PermissionDeniedError(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status DeadlineExceededError(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status UnsupportedError(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status EditedError(std::string m) { return {StatusCode::kEdited, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = InternalError("StatusOr constructed from an OK status without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

// The format-version check of every Veil file format, the one wording for all: Ok when `found` is
// `current`; Unsupported when it is newer (written by a newer Veil: exit 11); DataLoss when it is
// 0, which no Veil writes (an empty, truncated or foreign file: exit 6). `what`: "manifest", ...
Status CheckFormatVersion(const std::string& what, uint64_t found, uint64_t current);

// InvalidArgument "<what> must be a number in [lo, hi]" unless lo <= value <= hi (NaN never is):
// the one wording for options and model-file values alike.
Status CheckInRange(double value, double lo, double hi, const std::string& what);

// Parses the decimal `text`; `check` judges the number (NaN when `text` is not one, so a range
// check words both errors alike) and names `what` in its error.
StatusOr<double> ParseNumber(const std::string& text, const std::string& what,
                             const std::function<Status(double value, const std::string& what)>& check);

// Parses the decimal integer `text` (an optional sign and digits, nothing else) within [lo, hi];
// InvalidArgument "<what> must be a whole number in [lo, hi]" otherwise, the one wording for
// integer options and model-file values alike.
StatusOr<int64_t> ParseInteger(const std::string& text, const std::string& what, int64_t lo, int64_t hi);

}  // namespace veil

// Returns early with the status when it is not OK.
#define VEIL_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::veil::Status _veil_st = (expr);       \
    if (!_veil_st.ok()) return _veil_st;    \
  } while (0)

#define VEIL_CONCAT_INNER_(a, b) a##b
#define VEIL_CONCAT_(a, b) VEIL_CONCAT_INNER_(a, b)
// VEIL_ASSIGN_OR_RETURN(auto x, MakeX()); returns the status when MakeX() fails.
#define VEIL_ASSIGN_OR_RETURN(lhs, expr) VEIL_ASSIGN_OR_RETURN_IMPL_(VEIL_CONCAT_(_veil_so_, __LINE__), lhs, expr)
#define VEIL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
