// Shared setup for the fuzz targets: silence protobuf's log, fixed keys.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <string>

#include "veil/keys/credential.h"

namespace veil::fuzz {

inline void Quiet() {
  static bool once = (google::protobuf::SetLogHandler(nullptr), true);
  (void)once;
}

inline keys::Credential FixedKey() {
  std::string k(32, 'k');
  return keys::Credential::FromRawKey(keys::SecretBytes::Copy(k.data(), k.size()));
}

}  // namespace veil::fuzz
