// bfloat16 training on the CPU: whether the CPU computes it in hardware, and LibTorch's bfloat16
// autocast as a scope that can pause (for backward passes).
#pragma once

namespace veil::train {

// Whether this CPU computes bfloat16 products in hardware (AMX or AVX512-BF16, from /proc/cpuinfo's
// flags). Elsewhere oneDNN emulates them or LibTorch falls back to slow kernels: slower than float32.
bool CpuHasBf16();

// bfloat16 autocast on the CPU while alive and not paused: convolutions and matrix products run in
// bfloat16 with float32 accumulation (several times faster than float32 with AMX); weights, their
// gradients and the optimizer stay float32, and ops outside autocast's list keep their input types.
// Pause it around backward passes (they follow the forward pass's types) and around anything that
// must stay float32 (a double backward, a loss). A disabled scope does nothing.
class CpuBf16Autocast {
 public:
  explicit CpuBf16Autocast(bool enabled);
  ~CpuBf16Autocast();
  CpuBf16Autocast(const CpuBf16Autocast&) = delete;
  CpuBf16Autocast& operator=(const CpuBf16Autocast&) = delete;
  void Pause();
  void Resume();

 private:
  bool enabled_;
  bool active_ = false;
};

}  // namespace veil::train
