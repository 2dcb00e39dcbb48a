#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <google/protobuf/stubs/logging.h>

int main(int argc, char** argv) {
  // Corruption tests feed invalid UTF-8 to protobuf on purpose; its parse failure is what we check,
  // its log line is noise.
  google::protobuf::SetLogHandler(nullptr);
  doctest::Context context(argc, argv);
  return context.run();
}
