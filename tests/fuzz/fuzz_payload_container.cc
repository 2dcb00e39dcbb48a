// Video payload containers from anywhere: header, framing and records, read as a stream.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "fuzz_common.h"
#include "veil/engine/payload_container.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil::fuzz::Quiet();
  auto in = std::make_unique<std::istringstream>(std::string(reinterpret_cast<const char*>(data), size));
  auto reader = veil::engine::PayloadContainerReader::Open(std::move(in));
  if (!reader.ok()) return 0;
  uint32_t records = 0;
  for (;;) {
    auto next = reader->Next();
    if (!next.ok() || !next->has_value()) break;
    if ((*next)->sealed.empty()) __builtin_trap();
    ++records;
  }
  const auto ref = reader->Ref();
  if (ref.records != records || ref.size > size || ref.container_id.size() != 16) __builtin_trap();
  return 0;
}
