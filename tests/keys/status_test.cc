#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "veil/status.h"

using namespace veil;

TEST_CASE("an integer option is read only when it is all digits and within its range") {
  CHECK(*ParseInteger("42", "option --n", 1, 64) == 42);
  CHECK(*ParseInteger("-1", "field", -1, 10) == -1);
  CHECK(*ParseInteger("+7", "field", 0, 10) == 7);
  CHECK(*ParseInteger("64", "option --n", 1, 64) == 64);
  CHECK(*ParseInteger("9223372036854775807", "v", 0, INT64_MAX) == INT64_MAX);
  for (const char* bad : {"", " 4", "4 ", "4x", "0x10", "4.0", "4e1", "65", "0", "-", "+", "nan",
                          "99999999999999999999", "\xff"}) {
    CAPTURE(bad);
    auto v = ParseInteger(bad, "option --n", 1, 64);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().code() == StatusCode::kInvalidArgument);
    CHECK(v.status().message() == "option --n must be a whole number in [1, 64]");
  }
}

TEST_CASE("a number is judged by its check, and text that is not a number reaches the check as NaN") {
  auto in_range = [](double x, const std::string& what) { return CheckInRange(x, 0.0, 1.0, what); };
  CHECK(*ParseNumber("0.25", "ratio", in_range) == 0.25);
  CHECK(*ParseNumber("1e-3", "ratio", in_range) == doctest::Approx(1e-3));
  for (const char* bad : {"", "0.5x", "2", "-0.1", "nan", "inf"}) {
    CAPTURE(bad);
    auto v = ParseNumber(bad, "ratio", in_range);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().message() == "ratio must be a number in [0, 1]");
  }
  bool saw_nan = false;
  auto record = [&saw_nan](double x, const std::string&) {
    saw_nan = std::isnan(x);
    return Status::Ok();
  };
  CHECK(ParseNumber("abc", "v", record).ok());
  CHECK(saw_nan);
}
