#include "gan/discriminator.h"

namespace veil::train::gan {

using veil::engine::identity::EqualConv2dOptions;
using veil::engine::identity::EqualLinear;
using veil::engine::identity::EqualLinearOptions;

DiscriminatorImpl::DiscriminatorImpl(const DiscriminatorOptions& o) : options(o) {
  c64_ = register_module("c64", Conv(EqualConv2dOptions(3, o.ch64(), 3).stride(2)));
  c32a_ = register_module("c32a", Conv(EqualConv2dOptions(o.ch64(), o.ch32(), 3).stride(2)));
  c32b_ = register_module("c32b", Conv(EqualConv2dOptions(o.ch32(), o.ch32(), 3)));
  c16a_ = register_module("c16a", Conv(EqualConv2dOptions(o.ch32(), o.ch16(), 3).stride(2)));
  c16b_ = register_module("c16b", Conv(EqualConv2dOptions(o.ch16(), o.ch16(), 3)));
  c8_ = register_module("c8", Conv(EqualConv2dOptions(o.ch16(), o.ch8(), 3).stride(2)));
  c4_ = register_module("c4", Conv(EqualConv2dOptions(o.ch8() + 1, o.ch4(), 3).stride(2)));
  fc_ = register_module("fc", EqualLinear(EqualLinearOptions(o.ch4() * 16, o.ch4()).activate(true)));
  out_ = register_module("out", EqualLinear(EqualLinearOptions(o.ch4(), 1)));
}

torch::Tensor DiscriminatorImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = c64_->forward(x);
  h = c32b_->forward(c32a_->forward(h));
  h = c16b_->forward(c16a_->forward(h));
  h = c8_->forward(h);  // N x ch8 x 8 x 8
  // Minibatch standard deviation (groups of up to 4), one extra channel.
  const int64_t n = h.size(0), g = std::min<int64_t>(4, n);
  torch::Tensor y = h;
  if (n % g == 0) {
    y = h.view({g, n / g, h.size(1), h.size(2), h.size(3)});
    y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean({1, 2, 3});  // n/g
    y = y.view({1, n / g, 1, 1, 1}).expand({g, n / g, 1, h.size(2), h.size(3)}).reshape({n, 1, h.size(2), h.size(3)});
  } else {
    y = torch::zeros({n, 1, h.size(2), h.size(3)}, h.options());
  }
  h = c4_->forward(torch::cat({h, y}, 1));  // N x ch4 x 4 x 4
  return out_->forward(fc_->forward(h.flatten(1)));
}

}  // namespace veil::train::gan
