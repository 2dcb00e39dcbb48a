#include "common/cpu_bf16.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <fstream>
#include <sstream>
#include <string>

// PyTorch 2.4 replaced the CPU-specific autocast switches by ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VEIL_AUTOCAST_BY_DEVICE 1
#else
#define VEIL_AUTOCAST_BY_DEVICE 0
#endif

namespace veil::train {

bool CpuHasBf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (w == "amx_bf16" || w == "avx512_bf16") return true;
    }
    return false;
  }
  return false;
}

CpuBf16Autocast::CpuBf16Autocast(bool enabled) : enabled_(enabled) { Resume(); }

CpuBf16Autocast::~CpuBf16Autocast() { Pause(); }

void CpuBf16Autocast::Resume() {
  if (!enabled_ || active_) return;
#if VEIL_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
#else
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
#endif
  at::autocast::increment_nesting();
  active_ = true;
}

void CpuBf16Autocast::Pause() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // the weights' bfloat16 copies
#if VEIL_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(at::kCPU, false);
#else
  at::autocast::set_cpu_enabled(false);
#endif
  active_ = false;
}

}  // namespace veil::train
