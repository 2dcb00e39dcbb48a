#include "gan/gan_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>

#include "common/checkpoint_archive.h"
#include "common/cpu_bf16.h"
#include "common/training_log.h"
#include "data/utk_dataset.h"
#include "gan/discriminator.h"
#include "identity/attribute_encoder.h"
#include "identity/fine_detail.h"
#include "identity/generator.h"
#include "identity/generator_widen.h"
#include "nets/face_recognition_net.h"
#include "veil/engine/runtime.h"
#include "veil/engine/tfjs_weights.h"

// The trainer-only build (VEIL_TRAINER_ONLY: LibTorch and libsodium, no OpenCV or protobuf, for a
// GPU machine) writes checkpoints and a PPM preview; a full build exports model files.
#if !VEIL_TRAINER_ONLY
#include <opencv2/imgcodecs.hpp>

#include "identity/renderer_files.h"
#endif

namespace veil::train::gan {
namespace {

namespace fs = std::filesystem;
using engine::identity::AttributeEncoder;
using engine::identity::Generator;
using engine::identity::GeneratorOptions;
using Clock = std::chrono::steady_clock;

[[maybe_unused]] constexpr const char* kNoExport =
    "this trainer-only build writes checkpoints only; export them with a full build: veil-train-gan "
    "--minutes 0 --resume-from CHECKPOINT --export DIR and the run's --ema-kimg, --identity-gain and "
    "--readback-noise-ratio (models/README.md, \"Continue training\")";

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void SetRequiresGrad(torch::nn::Module& m, bool on) {
  for (auto& p : m.parameters()) p.set_requires_grad(on);
}

void SetLr(torch::optim::Adam& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
}

// BGR [-1, 1] at 128 -> the recognizer's input through random nuisances that a real change of
// identity survives and a pixel-level adversarial pattern does not: a similarity transform per
// sample (scale 1 +- 8 %, shift +- 3 % of the side, border padding), a low-pass (down to a random
// side in [56, 100] and back up to 150, for the whole batch) and, for half the samples, grey
// (luminance in all three channels: no colour fringes that only the recognizer sees).
torch::Tensor AugmentedRecognizerInput(const torch::Tensor& bgr) {
  namespace F = torch::nn::functional;
  const int64_t n = bgr.size(0);
  const auto opt = bgr.options();
  const torch::Tensor scale = 1.0 + (torch::rand({n}, opt) * 2 - 1) * 0.08;
  const torch::Tensor shift = (torch::rand({n, 2}, opt) * 2 - 1) * 0.06;  // normalized coords span 2
  torch::Tensor theta = torch::zeros({n, 2, 3}, opt);
  theta.select(2, 0).select(1, 0).copy_(scale);
  theta.select(2, 1).select(1, 1).copy_(scale);
  theta.select(2, 2).copy_(shift);
  const int64_t low = 56 + torch::randint(45, {1}).item<int64_t>();
  const torch::Tensor grid = F::affine_grid(theta, {n, 3, low, low}, /*align_corners=*/false);
  torch::Tensor x = F::grid_sample(
      bgr, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
  x = F::interpolate(x, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{150, 150})
                            .mode(torch::kBilinear)
                            .align_corners(false));
  const torch::Tensor luma = (x.select(1, 0) * 0.114 + x.select(1, 1) * 0.587 + x.select(1, 2) * 0.299).unsqueeze(1);
  const torch::Tensor grey = torch::rand({n, 1, 1, 1}, opt).lt(0.5).to(x.scalar_type());
  return engine::identity::OnCpuChannelsLast(engine::nets::RecognizerInputFromBgr(x * (1 - grey) + luma.expand_as(x) * grey));
}

// A fixed robust view for the metrics: grey, through a 64 px copy, at 150. A swap that moved the
// descriptor only with fine colour patterns shows up here as still close to the original.
torch::Tensor LowGreyRecognizerInput(const torch::Tensor& bgr) {
  namespace F = torch::nn::functional;
  auto resize = [](const torch::Tensor& t, int64_t side) {
    return F::interpolate(t, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{side, side})
                                 .mode(torch::kBilinear)
                                 .align_corners(false)
                                 .antialias(false));
  };
  torch::Tensor x = resize(F::avg_pool2d(bgr, F::AvgPool2dFuncOptions(2)), 150);
  x = (x.select(1, 0) * 0.114 + x.select(1, 1) * 0.587 + x.select(1, 2) * 0.299).unsqueeze(1).expand({-1, 3, -1, -1});
  return engine::nets::RecognizerInputFromBgr(x);
}

// 1 - cosine of the codes centred on `center` (the train codes' mean).
torch::Tensor CenteredCosineLoss(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& center) {
  return 1.0 - torch::cosine_similarity(a - center, b - center, 1, 1e-8).mean();
}

torch::Tensor Distances(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).pow(2).sum(1).sqrt(); }

// How many of the recognizer's feature maps the perceptual distance compares (gan_trainer.h: P).
constexpr int kPerceptualMaps = 4;

// P: per map, the channel vectors at each position scaled to unit length, the squared difference
// summed over channels and averaged over positions and the batch; then averaged over the maps.
torch::Tensor PerceptualDistance(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  auto unit = [](const torch::Tensor& f) {
    const torch::Tensor f32 = f.to(torch::kFloat32);
    return f32 / (f32.pow(2).sum(1, true).sqrt() + 1e-6);
  };
  torch::Tensor sum = torch::zeros({}, a.front().options().dtype(torch::kFloat32));
  for (size_t i = 0; i < a.size(); ++i) sum = sum + (unit(a[i]) - unit(b[i])).pow(2).sum(1).mean();
  return sum / static_cast<double>(a.size());
}

// Mean SSIM per image (Gaussian window 11, sigma 1.5, per channel), inputs in [0, 1].
torch::Tensor Ssim(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor g = torch::arange(11, a.options()).sub(5.0).pow(2).div(-2.0 * 1.5 * 1.5).exp();
  g = g / g.sum();
  const torch::Tensor win = torch::outer(g, g).view({1, 1, 11, 11}).repeat({3, 1, 1, 1});
  auto blur = [&](const torch::Tensor& t) -> torch::Tensor {
    return torch::conv2d(t, win, torch::Tensor(), torch::IntArrayRef({1, 1}), torch::IntArrayRef({0, 0}),
                         torch::IntArrayRef({1, 1}), 3);
  };
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  torch::Tensor ma = blur(a), mb = blur(b);
  torch::Tensor saa = blur(a * a) - ma * ma, sbb = blur(b * b) - mb * mb, sab = blur(a * b) - ma * mb;
  torch::Tensor map = ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2));
  return map.mean({1, 2, 3});
}

torch::Tensor ToUint8Image(const torch::Tensor& x) {  // N x 3 x H x W in [-1, 1] -> N x H x W x 3 uint8
  return engine::identity::UnitToPixels(x.detach()).cpu();
}

struct Metrics {
  double psnr = 0, ssim = 0, id_rec = 0, swap_to_target = 0, swap_to_orig = 0, pair = 0, baseline = 0;
  double swap_over_06 = 0;  // fraction of swaps farther than 0.6 from the original
  double swap_orig_lowgrey = 0, baseline_lowgrey = 0;  // the same distances through LowGreyRecognizerInput
  // Fine detail (FineDetailEnergy) of the reconstructions and of the swaps over the originals' (1: as
  // sharp as the photos); veil eval's detail_vs_original on these crops.
  double detail_rec = 0, detail_swap = 0;
  // A swap aimed at the face's own pseudonym (pseudonyms.f32, key 0; unsteered): read-back distance
  // to that pseudonym. NaN without the table.
  double pseudo_to_target = 0;
};

struct LossSums {
  double d = 0, d_real = 0, d_fake = 0, r1 = 0, adv = 0, rec = 0, id_rec = 0, id_swap = 0, attr = 0, cyc = 0, away = 0;
  double chroma = 0, perc = 0;
  int n = 0, n_r1 = 0, n_cyc = 0, n_d = 0;
};

class Trainer {
 public:
  Trainer(const GanTrainOptions& o, UtkDataset data)
      : o_(o),
        data_(std::move(data)),
        device_(torch::cuda::is_available() ? torch::kCUDA : torch::kCPU) {}

  Status Init() {
    engine::InitRuntimeOnce();
    if (o_.threads > 0) torch::set_num_threads(o_.threads);
    torch::manual_seed(o_.seed);
    bf16_ = o_.bf16 && device_.is_cpu();
    if (bf16_ && !CpuHasBf16()) {
      return FailedPreconditionError("--bf16 needs a CPU with AMX or AVX512-BF16 (not in /proc/cpuinfo's flags here); "
                                     "without it bfloat16 is emulated and slower than float32");
    }
    if (o_.bf16 && device_.is_cuda()) std::printf("veil-train-gan: --bf16 applies to CPU runs; this CUDA run stays float32\n");
    VEIL_RETURN_IF_ERROR(ChooseGeneratorWidths());
    VEIL_ASSIGN_OR_RETURN(auto w, engine::TfjsWeights::Load(engine::ResolveModelsDir(""), "face_recognition_model", true));
    VEIL_RETURN_IF_ERROR(recognizer_->LoadFrom(w));
    recognizer_->eval();
    recognizer_->to(device_);
    E_->to(device_);
    G_->to(device_);
    D_->to(device_);
    E_ema_->to(device_);
    G_ema_->to(device_);
    SetRequiresGrad(*E_ema_, false);
    SetRequiresGrad(*G_ema_, false);
    std::vector<torch::Tensor> eg = E_->parameters();
    for (auto& p : G_->parameters()) eg.push_back(p);
    opt_g_ = std::make_unique<torch::optim::Adam>(
        eg, torch::optim::AdamOptions(o_.lr_g).betas(std::make_tuple(0.0, 0.99)).eps(1e-8));
    opt_d_ = std::make_unique<torch::optim::Adam>(
        D_->parameters(), torch::optim::AdamOptions(o_.lr_d).betas(std::make_tuple(0.0, 0.99)).eps(1e-8));
    size_t twins = 0;
    train_ = data_.TrainIndices(&twins);
    const auto holdout = data_.Indices(Split::kHoldout);
    if (train_.empty() || holdout.empty()) return FailedPreconditionError("the data set has no train or no holdout images");
    // Held-out images for the metrics: spread over the whole (name-sorted: age, gender, race) holdout.
    const size_t n_eval = std::min<size_t>(static_cast<size_t>(std::max(2, o_.holdout_eval)), holdout.size());
    for (size_t i = 0; i < n_eval; ++i) eval_.push_back(holdout[i * holdout.size() / n_eval]);
    // The train codes' mean: the centre of the identity losses' cosine.
    std::vector<double> mean(128, 0.0);
    for (size_t i : train_) {
      const float* d = data_.descriptor(i);
      for (int k = 0; k < 128; ++k) mean[k] += d[k];
    }
    code_center_ = torch::empty({1, 128}, torch::kFloat32);
    for (int k = 0; k < 128; ++k) code_center_[0][k] = static_cast<float>(mean[k] / static_cast<double>(train_.size()));
    code_center_ = code_center_.to(device_);
    std::error_code ec;
    fs::create_directories(o_.out_dir, ec);
    if (ec) return IoError("cannot create " + o_.out_dir + ": " + ec.message());
    std::printf("veil-train-gan: device %s (%d threads), %zu train faces (%zu left out: the same photo as a held-out "
                "face) / %zu holdout, batch %d, E+G %.3f GFLOP per face\n",
                device_.is_cuda() ? "cuda" : bf16_ ? "cpu, bfloat16 autocast" : "cpu", torch::get_num_threads(),
                train_.size(), twins, holdout.size(),
                o_.batch, 2e-9 * engine::identity::MeasureMacsPerFace(*E_, *G_));
    return Status::Ok();
  }

  // The checkpoint this run starts from: out_dir/ckpt.pt with --resume when it exists, else
  // --resume-from; empty for a new run.
  StatusOr<std::string> StartCheckpoint() const {
    const std::string full = (fs::path(o_.out_dir) / "ckpt.pt").string();
    if (o_.resume && fs::exists(full)) return full;
    if (o_.resume_from.empty()) return std::string();
    if (!fs::exists(o_.resume_from)) return NotFoundError("no checkpoint at " + o_.resume_from);
    return o_.resume_from;
  }

  // G's widths: --g-ch64 / --g-ch128 when given, else the checkpoint's. Called before anything is
  // built from G; reads the start checkpoint (start_ar_), which Restore then loads. A compact
  // checkpoint narrower than asked is widened when loaded (LoadCompact); a full one cannot be (its
  // Adam state has the old shapes) and a narrower G is refused.
  Status ChooseGeneratorWidths() {
    VEIL_ASSIGN_OR_RETURN(start_path_, StartCheckpoint());
    const std::string& path = start_path_;
    if (!path.empty()) {
      VEIL_RETURN_IF_ERROR(LoadArchive(path, device_, start_ar_, "checkpoint"));
      torch::Tensor t;
      ckpt_compact_ = start_ar_.try_read("compact_format", t, /*is_buffer=*/true);
      ckpt_widths_ = ReadWidths(start_ar_);
    }
    const std::pair<int64_t, int64_t> want{o_.g_ch64 > 0 ? o_.g_ch64 : ckpt_widths_.first,
                                           o_.g_ch128 > 0 ? o_.g_ch128 : ckpt_widths_.second};
    const std::string from = std::to_string(ckpt_widths_.first) + "/" + std::to_string(ckpt_widths_.second);
    if (!path.empty() && (want.first < ckpt_widths_.first || want.second < ckpt_widths_.second)) {
      return InvalidArgumentError("--g-ch64/--g-ch128 cannot narrow the checkpoint's generator (ch64/ch128 " + from + ")");
    }
    if (want != ckpt_widths_ && !path.empty() && !ckpt_compact_) {
      return InvalidArgumentError("a full checkpoint cannot be widened (its optimizer state has the old shapes): "
                                  "start from its compact gan-checkpoint.pt with --resume-from");
    }
    if (want != std::make_pair(G_->options.ch64(), G_->options.ch128())) {
      const GeneratorOptions g = GeneratorOptions(G_->options).ch64(want.first).ch128(want.second);
      G_ = Generator(g);
      G_ema_ = Generator(g);
    }
    return Status::Ok();
  }

  // Loads the start checkpoint that ChooseGeneratorWidths read, then lets its tensors go.
  Status Restore() {
    if (start_path_.empty()) {
      if (o_.resume) std::printf("veil-train-gan: no %s/ckpt.pt yet, starting fresh\n", o_.out_dir.c_str());
      return Status::Ok();
    }
    const Status st = ckpt_compact_ ? LoadCompact(start_ar_) : LoadFull(start_ar_, start_path_);
    start_ar_ = torch::serialize::InputArchive();
    return st;
  }

  // E's bottleneck: the option when given, else the checkpoint's.
  Status ApplyPool() {
    const int64_t pool = o_.attr_pool > 0 ? o_.attr_pool : ckpt_pool_;
    if (pool != 1 && pool != 2 && pool != 4) return InvalidArgumentError("--attr-pool must be 1, 2 or 4");
    if (pool != ckpt_pool_ && step_ > 0) {
      std::printf("veil-train-gan: attribute bottleneck pool %lld -> %lld from step %lld\n",
                  static_cast<long long>(ckpt_pool_), static_cast<long long>(pool), static_cast<long long>(step_));
    }
    E_->options.pool(pool);
    E_ema_->options.pool(pool);
    if (!ema_loaded_) {  // a fresh run, a compact checkpoint or one written before the average
      CopyWeights(*E_, *E_ema_);
      CopyWeights(*G_, *G_ema_);
    }
    return Status::Ok();
  }

  Status Run() {
    const auto start = Clock::now();
    auto last_ckpt = Clock::now(), last_eval = Clock::now();
    const double budget_s = o_.minutes * 60.0;
    VEIL_RETURN_IF_ERROR(OpenLog());
    if (budget_s > 0 && step_ == 0) {
      Evaluate(true);  // the starting point, in the log
      last_eval = Clock::now();
    }
    LossSums sums;
    auto last_log = Clock::now();
    const int64_t first_step = step_;
    auto stopped = [&] { return o_.stop && o_.stop(); };
    while (budget_s > 0 && Seconds(start) < budget_s && !stopped()) {
      TrainStep(sums);
      ++step_;
      last_batch_ = o_.batch;
      last_cuda_ = device_.is_cuda();
      last_bf16_ = bf16_;
      if (sums.n >= o_.log_every) {
        const double dt = Seconds(last_log) / sums.n;
        train_seconds_ += Seconds(last_log);
        last_log = Clock::now();
        WriteLogRow(sums, dt, nullptr);
        std::printf("step %lld  %.2fs/step  rec %.4f  id %.3f/%.3f  away %.3f  attr %.4f  chroma %.4f  perc %.4f  cyc %.4f  adv %.3f  d %.3f\n",
                    static_cast<long long>(step_), dt, sums.rec / sums.n, sums.id_rec / sums.n, sums.id_swap / sums.n,
                    sums.away / sums.n, sums.attr / sums.n, sums.chroma / sums.n, sums.perc / sums.n,
                    sums.cyc / std::max(1, sums.n_cyc),
                    sums.adv / std::max(1, sums.n_d), sums.d / std::max(1, sums.n_d));
        std::fflush(stdout);
        sums = LossSums();
      }
      if (Seconds(last_eval) >= o_.eval_minutes * 60.0) {
        Evaluate(true);
        last_eval = Clock::now();
      }
      if (Seconds(last_ckpt) >= o_.checkpoint_minutes * 60.0) {
        VEIL_RETURN_IF_ERROR(SaveCheckpoints());
        last_ckpt = Clock::now();
      }
    }
    train_seconds_ += Seconds(last_log);
    if (step_ > first_step || budget_s > 0) {
      last_metrics_ = Evaluate(true);
      VEIL_RETURN_IF_ERROR(SaveCheckpoints());
    } else {
      last_metrics_ = Evaluate(false);
    }
    const char* why = budget_s <= 0 ? "no training asked: --minutes 0" : stopped() ? "asked to stop" : "time budget";
    std::printf("veil-train-gan: stopped at step %lld (%s)\n", static_cast<long long>(step_), why);
    if (!o_.export_dir.empty()) VEIL_RETURN_IF_ERROR(Export());
    return Status::Ok();
  }

 private:
  // A batch of crops (with random horizontal flips when the flipped descriptors exist).
  void MakeBatch(const std::vector<size_t>& idx, const std::vector<bool>& flip, torch::Tensor& x, torch::Tensor& z) {
    const int64_t n = static_cast<int64_t>(idx.size());
    torch::Tensor xu = torch::empty({n, 128, 128, 3}, torch::kUInt8);
    torch::Tensor zc = torch::empty({n, 128}, torch::kFloat32);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(xu[i].data_ptr<uint8_t>(), data_.crop_data(idx[i]), 128 * 128 * 3);
      const float* d = flip[i] ? data_.descriptor_flip(idx[i]) : data_.descriptor(idx[i]);
      std::memcpy(zc[i].data_ptr<float>(), d, sizeof(float) * 128);
    }
    x = engine::identity::PixelsToUnit(xu.to(device_));
    for (int64_t i = 0; i < n; ++i) {
      if (flip[i]) x.select(0, i).copy_(x.select(0, i).flip({2}));
    }
    x = engine::identity::OnCpuChannelsLast(x);
    z = zc.to(device_);
  }

  // Wall time of the step's phases on stderr when $VEIL_GAN_PROFILE is set (for tuning).
  void Mark(const char* what) {
    if (!profile_) return;
    if (device_.is_cuda()) torch::cuda::synchronize();
    std::fprintf(stderr, "  %-10s %6.3f s\n", what, Seconds(mark_));
    mark_ = Clock::now();
  }

  // z_y with a flow_swaps share of its rows replaced by the face's own pseudonym under a random
  // training key: G learns to draw the codes the flow makes, not only other real faces' codes.
  torch::Tensor WithPseudonyms(const torch::Tensor& zy, const std::vector<size_t>& idx, std::mt19937_64& rng) {
    const int64_t n = static_cast<int64_t>(idx.size());
    torch::Tensor p = torch::zeros({n, 128}, torch::kFloat32);
    torch::Tensor use = torch::zeros({n, 1}, torch::kBool);
    std::bernoulli_distribution pick(o_.flow_swaps);
    std::uniform_int_distribution<int> key(0, data_.pseudonym_keys() - 1);
    for (int64_t i = 0; i < n; ++i) {
      if (!pick(rng)) continue;
      std::memcpy(p[i].data_ptr<float>(), data_.pseudonym(idx[static_cast<size_t>(i)], key(rng)), sizeof(float) * 128);
      use[i][0] = true;
    }
    return torch::where(use.to(device_), p.to(device_), zy);
  }

  static torch::Tensor Chroma(const torch::Tensor& bgr) {
    const torch::Tensor g = bgr.slice(1, 1, 2);
    return torch::cat({bgr.slice(1, 0, 1) - g, bgr.slice(1, 2, 3) - g}, 1);
  }

  void TrainStep(LossSums& s) {
    mark_ = Clock::now();
    std::mt19937_64 rng(o_.seed * 1000003ULL + static_cast<uint64_t>(step_));
    std::vector<size_t> idx(o_.batch);
    std::vector<bool> flip(o_.batch);
    std::uniform_int_distribution<size_t> pick(0, train_.size() - 1);
    for (int i = 0; i < o_.batch; ++i) {
      idx[i] = train_[pick(rng)];
      flip[i] = data_.has_flip() && (rng() & 1);
    }
    torch::Tensor x, zx;
    MakeBatch(idx, flip, x, zx);
    torch::Tensor zy = zx.roll(1, 0);
    if (o_.flow_swaps > 0) zy = WithPseudonyms(zy, idx, rng);
    const double warm = o_.warmup_steps > 0 ? std::min(1.0, double(step_ - warm_from_ + 1) / o_.warmup_steps) : 1.0;
    SetLr(*opt_g_, o_.lr_g * warm);
    SetLr(*opt_d_, o_.lr_d * warm);

    // --bf16: the forward passes in bfloat16; the R1 penalty and both backward passes paused.
    CpuBf16Autocast autocast(bf16_);
    const torch::Tensor a = E_->forward(x);
    const torch::Tensor rec = G_->forward(a, zx);
    const torch::Tensor swp = G_->forward(a, zy);
    const torch::Tensor fake = torch::cat({rec, swp});
    Mark("E+G fwd");

    // Discriminator.
    const bool adversarial = step_ >= o_.adv_start_step;
    if (adversarial) {
      SetRequiresGrad(*D_, true);
      opt_d_->zero_grad();
      const torch::Tensor d_real = D_->forward(x).to(torch::kFloat32);
      const torch::Tensor d_fake = D_->forward(fake.detach()).to(torch::kFloat32);
      torch::Tensor d_loss = torch::softplus(-d_real).mean() + torch::softplus(d_fake).mean();
      ++s.n_d;
      s.d_real += d_real.mean().item<double>();
      s.d_fake += d_fake.mean().item<double>();
      autocast.Pause();
      if (o_.r1_every > 0 && step_ % o_.r1_every == 0) {
        torch::Tensor xr = x.detach().requires_grad_(true);
        torch::Tensor out = D_->forward(xr);
        torch::Tensor grad = torch::autograd::grad({out.sum()}, {xr}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
        torch::Tensor r1 = grad.pow(2).sum({1, 2, 3}).mean();
        d_loss = d_loss + r1 * (0.5 * o_.r1_gamma * o_.r1_every);
        s.r1 += r1.item<double>();
        ++s.n_r1;
      }
      d_loss.backward();
      opt_d_->step();
      autocast.Resume();
      s.d += d_loss.item<double>();
    }
    Mark("D step");

    // Encoder + generator.
    SetRequiresGrad(*D_, false);
    opt_g_->zero_grad();
    const torch::Tensor adv =
        adversarial ? torch::softplus(-D_->forward(fake).to(torch::kFloat32)).mean() : torch::zeros({}, x.options());
    const torch::Tensor rec_l1 = (rec - x).abs().mean();
    Mark("G adv fwd");
    // The recognizer (fwd + bwd at 150^2, several GFLOP a face) sees every swap but only half of
    // the reconstructions, whose identity L1 already pulls towards the original.
    const int64_t b = x.size(0), h = std::max<int64_t>(1, b / 2);
    const torch::Tensor r_in = torch::cat({swp, rec.slice(0, 0, h)});
    const torch::Tensor ids = recognizer_->forward(o_.id_augment ? AugmentedRecognizerInput(r_in)
                                                                   : engine::nets::RecognizerInputFromBgr(r_in))
                                .to(torch::kFloat32);
    Mark("R fwd");
    const torch::Tensor id_swap = CenteredCosineLoss(ids.slice(0, 0, b), zy, code_center_);
    const torch::Tensor id_rec = CenteredCosineLoss(ids.slice(0, b), zx.slice(0, 0, h), code_center_);
    const torch::Tensor away = torch::relu(o_.away_margin - Distances(ids.slice(0, 0, b), zx)).mean();
    const torch::Tensor attr = (E_->forward(swp) - a.detach()).pow(2).mean();
    // The swap keeps x's colour: per-pixel chroma L1 (B-G, R-G). Identity lives in shape and
    // shading; skin tone is an attribute, and the colour fringes that move a recognizer do not pay.
    const torch::Tensor chroma = (Chroma(swp) - Chroma(x)).abs().mean();
    torch::Tensor cyc = torch::zeros({}, x.options());
    if (o_.cyc_every > 0 && step_ % o_.cyc_every == 0) {
      cyc = (G_->forward(E_->forward(swp.slice(0, 0, h)), zx.slice(0, 0, h)) - x.slice(0, 0, h)).abs().mean();
      s.cyc += cyc.item<double>();
      ++s.n_cyc;
    }
    Mark("attr+cyc");
    torch::Tensor perc = torch::zeros({}, x.options());
    if (o_.w_perc > 0) {
      std::vector<torch::Tensor> fx;
      {
        torch::NoGradGuard no_grad;
        fx = recognizer_->Features(engine::identity::OnCpuChannelsLast(engine::nets::RecognizerInputFromBgr(x)), kPerceptualMaps);
      }
      perc = PerceptualDistance(
          recognizer_->Features(engine::identity::OnCpuChannelsLast(engine::nets::RecognizerInputFromBgr(rec)), kPerceptualMaps), fx);
      Mark("perceptual");
    }
    const torch::Tensor g_loss = o_.w_rec * rec_l1 + o_.w_id * (id_rec + id_swap) + o_.w_away * away +
                                 o_.w_attr * attr + o_.w_cyc * cyc + o_.w_adv * adv + o_.w_chroma * chroma +
                                 o_.w_perc * perc;
    autocast.Pause();
    g_loss.backward();
    Mark("G bwd");
    opt_g_->step();
    UpdateAverage();
    Mark("G opt");
    s.adv += adv.item<double>();
    s.rec += rec_l1.item<double>();
    s.id_rec += id_rec.item<double>();
    s.id_swap += id_swap.item<double>();
    s.attr += attr.item<double>();
    s.away += away.item<double>();
    s.chroma += chroma.item<double>();
    s.perc += perc.item<double>();
    ++s.n;
  }

  // Holdout metrics of the weights that ship (the average when it is on; the preview shows them) and,
  // beside them, of the raw weights; with `preview`, the preview and a log row.
  Metrics Evaluate(bool preview) {
    const bool average = Averaging();
    const Metrics m = Measure(ShippedE(), ShippedG(), preview);
    std::printf("eval step %lld%s: PSNR %.2f dB  SSIM %.4f  d(rec,x) %.3f  d(swap,target) %.3f  d(swap,orig) %.3f "
                "(>0.6: %.0f%%)  d(pair) %.3f  d(R(x128),x) %.3f  grey-64: d(swap,orig) %.3f d(x,x) %.3f  "
                "detail rec %.3f swap %.3f",
                static_cast<long long>(step_), average ? " (averaged weights)" : "", m.psnr, m.ssim, m.id_rec,
                m.swap_to_target, m.swap_to_orig, 100 * m.swap_over_06, m.pair, m.baseline, m.swap_orig_lowgrey,
                m.baseline_lowgrey, m.detail_rec, m.detail_swap);
    if (!std::isnan(m.pseudo_to_target)) std::printf("  d(swap to own pseudonym, pseudonym) %.3f", m.pseudo_to_target);
    std::printf("\n");
    Metrics raw;
    if (average) {
      raw = Measure(*E_, *G_, false);
      std::printf("  raw weights: PSNR %.2f dB  SSIM %.4f  d(rec,x) %.3f  d(swap,target) %.3f  d(swap,orig) %.3f (>0.6: %.0f%%)\n",
                  raw.psnr, raw.ssim, raw.id_rec, raw.swap_to_target, raw.swap_to_orig, 100 * raw.swap_over_06);
    }
    std::fflush(stdout);
    if (preview) WriteLogRow(LossSums(), 0, &m, average ? &raw : nullptr);
    last_metrics_ = m;
    return m;
  }

  // OUT/preview.png (a PPM, preview.ppm, in the trainer-only build): H x W x 3 uint8 BGR on the CPU.
  void WritePreview(const torch::Tensor& grid) const {
    const int rows = static_cast<int>(grid.size(0)), cols = static_cast<int>(grid.size(1));
#if VEIL_TRAINER_ONLY
    const std::string path = (fs::path(o_.out_dir) / "preview.ppm").string(), tmp = path + ".tmp";
    const torch::Tensor rgb = grid.flip({2}).contiguous();
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << "P6\n" << cols << " " << rows << "\n255\n";
    f.write(reinterpret_cast<const char*>(rgb.data_ptr<uint8_t>()), static_cast<std::streamsize>(rgb.numel()));
    f.close();
    if (f) fs::rename(tmp, path);
#else
    const std::string path = (fs::path(o_.out_dir) / "preview.png").string(), tmp = path + ".tmp.png";
    const cv::Mat m(rows, cols, CV_8UC3, const_cast<uint8_t*>(grid.data_ptr<uint8_t>()));
    if (cv::imwrite(tmp, m)) fs::rename(tmp, path);
#endif
  }

  Metrics Measure(engine::identity::AttributeEncoderImpl& E, engine::identity::GeneratorImpl& G, bool preview) {
    torch::NoGradGuard no_grad;
    Metrics m;
    const size_t n = eval_.size();
    const int64_t chunk = 16;
    double psnr = 0, ssim = 0, id_rec = 0, to_target = 0, to_orig = 0, pair = 0, base = 0, over = 0;
    double orig_lg = 0, base_lg = 0, detail_x = 0, detail_rec = 0, detail_swap = 0, to_pseudonym = 0;
    std::vector<torch::Tensor> rows;  // preview: original | reconstruction | swap | swapped back
    for (size_t start = 0; start < n; start += chunk) {
      std::vector<size_t> idx, partner;
      for (size_t i = start; i < std::min(n, start + chunk); ++i) {
        idx.push_back(eval_[i]);
        partner.push_back(eval_[(i + n / 2) % n]);  // a fixed partner far away in the (age-sorted) list
      }
      torch::Tensor x, zx, xp, zy;
      MakeBatch(idx, std::vector<bool>(idx.size(), false), x, zx);
      MakeBatch(partner, std::vector<bool>(partner.size(), false), xp, zy);
      const torch::Tensor a = E.forward(x);
      const torch::Tensor rec = G.forward(a, zx).clamp(-1, 1);
      const torch::Tensor swp = G.forward(a, zy).clamp(-1, 1);
      const torch::Tensor cyc = G.forward(E.forward(swp), zx).clamp(-1, 1);
      if (data_.has_pseudonyms()) {
        torch::Tensor zp = torch::empty({static_cast<int64_t>(idx.size()), 128}, torch::kFloat32);
        for (size_t i = 0; i < idx.size(); ++i)
          std::memcpy(zp[static_cast<int64_t>(i)].data_ptr<float>(), data_.pseudonym(idx[i], 0), sizeof(float) * 128);
        zp = zp.to(device_);
        const torch::Tensor anon = G.forward(a, zp).clamp(-1, 1);
        to_pseudonym += Distances(recognizer_->forward(engine::nets::RecognizerInputFromBgr(anon)), zp).sum().item<double>();
      }
      // PSNR, SSIM and fine detail on 8-bit images, as a viewer sees them.
      const torch::Tensor xu = ToUint8Image(x), ru = ToUint8Image(rec), su = ToUint8Image(swp);
      const torch::Tensor xq = xu.to(torch::kFloat32), rq = ru.to(torch::kFloat32);
      const torch::Tensor mse = (xq - rq).pow(2).mean({1, 2, 3}).clamp_min(1e-10);
      psnr += (10.0 * torch::log10(255.0 * 255.0 / mse)).sum().item<double>();
      ssim += Ssim(xq.permute({0, 3, 1, 2}) / 255.0, rq.permute({0, 3, 1, 2}) / 255.0).sum().item<double>();
      detail_x += engine::identity::FineDetailEnergy(xu).sum().item<double>();
      detail_rec += engine::identity::FineDetailEnergy(ru).sum().item<double>();
      detail_swap += engine::identity::FineDetailEnergy(su).sum().item<double>();
      const torch::Tensor d_rec = recognizer_->forward(engine::nets::RecognizerInputFromBgr(rec));
      const torch::Tensor d_swp = recognizer_->forward(engine::nets::RecognizerInputFromBgr(swp));
      const torch::Tensor d_x = recognizer_->forward(engine::nets::RecognizerInputFromBgr(x));
      id_rec += Distances(d_rec, zx).sum().item<double>();
      to_target += Distances(d_swp, zy).sum().item<double>();
      const torch::Tensor away = Distances(d_swp, zx);
      to_orig += away.sum().item<double>();
      over += away.gt(0.6).sum().item<double>();
      pair += Distances(zx, zy).sum().item<double>();
      base += Distances(d_x, zx).sum().item<double>();
      const torch::Tensor lg_swp = recognizer_->forward(LowGreyRecognizerInput(swp));
      const torch::Tensor lg_x = recognizer_->forward(LowGreyRecognizerInput(x));
      orig_lg += Distances(lg_swp, lg_x).sum().item<double>();
      base_lg += Distances(lg_x, zx).sum().item<double>();
      if (preview && start == 0) {
        const torch::Tensor row = torch::cat({xu, ru, su, ToUint8Image(cyc)}, 2);
        for (int64_t i = 0; i < std::min<int64_t>(8, x.size(0)); ++i) rows.push_back(row[i]);
      }
    }
    const double dn = static_cast<double>(n);
    m = {psnr / dn, ssim / dn, id_rec / dn, to_target / dn, to_orig / dn, pair / dn, base / dn, over / dn,
         orig_lg / dn, base_lg / dn};
    if (detail_x > 0) m.detail_rec = detail_rec / detail_x, m.detail_swap = detail_swap / detail_x;
    m.pseudo_to_target = data_.has_pseudonyms() ? to_pseudonym / dn : std::nan("");
    if (preview && !rows.empty()) WritePreview(torch::cat(rows, 0).contiguous());
    return m;
  }

  // The eval_* columns measure the weights that ship (the average when it is on), eval_raw_* the raw
  // weights beside them (empty when the average is off).
  Status OpenLog() {
    return OpenTrainingLog(
        (fs::path(o_.out_dir) / "log.tsv").string(),
        "step\tutc\ttrain_s\tsec_per_step\tbatch\tlr_scale\td_loss\td_real\td_fake\tr1\tg_adv\trec_l1\tid_rec\tid_swap"
        "\tattr\tcyc_l1\teval_psnr\teval_ssim\teval_d_rec\teval_d_swap_target\teval_d_swap_orig"
        "\teval_swap_over_0.6\teval_d_pair\teval_d_baseline\tg_away\teval_d_swap_orig_lowgrey\teval_d_lowgrey_baseline"
        "\tg_chroma\teval_raw_psnr\teval_raw_ssim\teval_raw_d_rec\teval_raw_d_swap_target\teval_raw_d_swap_orig"
        "\teval_raw_swap_over_0.6\tema_kimg\tg_perc\teval_detail_rec\teval_detail_swap\teval_d_pseudonym_target",
        log_);
  }

  void WriteLogRow(const LossSums& s, double sec_per_step, const Metrics* m, const Metrics* raw = nullptr) {
    if (!log_.is_open()) return;
    auto avg = [&](double v, int n) {
      std::ostringstream os;
      if (n > 0) os << std::setprecision(5) << v / n;
      return os.str();
    };
    const double warm = o_.warmup_steps > 0 ? std::min(1.0, double(step_ - warm_from_ + 1) / o_.warmup_steps) : 1.0;
    log_ << step_ << '\t' << UtcNow() << '\t' << std::fixed << std::setprecision(0) << train_seconds_ << '\t'
         << std::setprecision(3) << sec_per_step << std::defaultfloat << '\t' << o_.batch << '\t' << warm << '\t'
         << avg(s.d, s.n_d) << '\t' << avg(s.d_real, s.n_d) << '\t' << avg(s.d_fake, s.n_d) << '\t'
         << avg(s.r1, s.n_r1) << '\t' << avg(s.adv, s.n_d) << '\t' << avg(s.rec, s.n) << '\t' << avg(s.id_rec, s.n)
         << '\t' << avg(s.id_swap, s.n) << '\t' << avg(s.attr, s.n) << '\t' << avg(s.cyc, s.n_cyc);
    if (m != nullptr) {
      log_ << std::setprecision(5) << '\t' << m->psnr << '\t' << m->ssim << '\t' << m->id_rec << '\t'
           << m->swap_to_target << '\t' << m->swap_to_orig << '\t' << m->swap_over_06 << '\t' << m->pair << '\t'
           << m->baseline;
    } else {
      log_ << "\t\t\t\t\t\t\t\t";
    }
    log_ << '\t' << avg(s.away, s.n);
    if (m != nullptr) log_ << '\t' << m->swap_orig_lowgrey << '\t' << m->baseline_lowgrey;
    else log_ << "\t\t";
    log_ << '\t' << avg(s.chroma, s.n);
    if (raw != nullptr) {
      log_ << '\t' << raw->psnr << '\t' << raw->ssim << '\t' << raw->id_rec << '\t' << raw->swap_to_target << '\t'
           << raw->swap_to_orig << '\t' << raw->swap_over_06;
    } else {
      log_ << "\t\t\t\t\t\t";
    }
    log_ << '\t' << o_.ema_kimg << '\t' << avg(s.perc, s.n);
    if (m != nullptr) log_ << '\t' << m->detail_rec << '\t' << m->detail_swap;
    else log_ << "\t\t";
    log_ << '\t';
    if (m != nullptr && !std::isnan(m->pseudo_to_target)) log_ << m->pseudo_to_target;
    log_ << '\n';
    log_.flush();
  }

  // ---- checkpoints ----

  Status SaveCheckpoints() {
    try {
      torch::serialize::OutputArchive ar;
      WriteModule(ar, "E", *E_);
      WriteModule(ar, "G", *G_);
      WriteModule(ar, "D", *D_);
      if (Averaging()) {  // else stale: a later run with the average starts it from the weights
        WriteModule(ar, "E_ema", *E_ema_);
        WriteModule(ar, "G_ema", *G_ema_);
      }
      WriteOptimizer(ar, "opt_g", *opt_g_);
      WriteOptimizer(ar, "opt_d", *opt_d_);
      ar.write("step", torch::tensor(step_), true);
      ar.write("train_seconds", torch::tensor(train_seconds_, torch::kFloat64), true);
      ar.write("attr_pool", torch::tensor(E_->options.pool()), true);
      WriteWidths(ar);
      WriteLastRun(ar);
      const std::string path = (fs::path(o_.out_dir) / "ckpt.pt").string();
      VEIL_RETURN_IF_ERROR(SaveArchiveDurably(ar, path, "checkpoint"));
      VEIL_RETURN_IF_ERROR(SaveCompact((fs::path(o_.out_dir) / "gan-checkpoint.pt").string()));
      std::printf("checkpoint at step %lld -> %s\n", static_cast<long long>(step_), path.c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      return IoError(std::string("writing the checkpoint failed: ") + e.what());
    }
    return Status::Ok();
  }

  // Each scalar into a fresh tensor: reading into a defined tensor of another dtype reinterprets bits.
  static torch::Tensor ReadScalar(torch::serialize::InputArchive& ar, const std::string& key) {
    torch::Tensor t;
    ar.read(key, t, /*is_buffer=*/true);
    return t;
  }

  // Checkpoints written before that fix hold a garbage value (the bits of an int64): start over.
  // Written since the bottleneck option exists; older checkpoints trained with pool 1.
  static int64_t ReadPool(torch::serialize::InputArchive& ar) {
    torch::Tensor t;
    return ar.try_read("attr_pool", t, /*is_buffer=*/true) ? t.item<int64_t>() : 1;
  }

  // G's ch64 and ch128, written since --g-ch64/--g-ch128 exist; older checkpoints have 48 and 24.
  void WriteWidths(torch::serialize::OutputArchive& ar) const {
    ar.write("g_ch64", torch::tensor(G_->options.ch64()), true);
    ar.write("g_ch128", torch::tensor(G_->options.ch128()), true);
  }
  static std::pair<int64_t, int64_t> ReadWidths(torch::serialize::InputArchive& ar) {
    torch::Tensor a, b;
    if (ar.try_read("g_ch64", a, true) && ar.try_read("g_ch128", b, true)) return {a.item<int64_t>(), b.item<int64_t>()};
    return {48, 24};
  }

  // The batch and device of the run that last trained these weights: what the export reports, also
  // when it exports a GPU run's checkpoint on a CPU. Absent in checkpoints written before them.
  void WriteLastRun(torch::serialize::OutputArchive& ar) const {
    if (last_batch_ <= 0) return;
    ar.write("last_batch", torch::tensor(last_batch_), true);
    ar.write("last_cuda", torch::tensor(int64_t{last_cuda_ ? 1 : 0}), true);
    ar.write("last_bf16", torch::tensor(int64_t{last_bf16_ ? 1 : 0}), true);
  }
  void ReadLastRun(torch::serialize::InputArchive& ar) {
    torch::Tensor b, c;
    if (ar.try_read("last_batch", b, true) && ar.try_read("last_cuda", c, true)) {
      last_batch_ = b.item<int64_t>();
      last_cuda_ = c.item<int64_t>() != 0;
      last_bf16_ = ar.try_read("last_bf16", c, true) && c.item<int64_t>() != 0;
    }
  }

  static double ReadTrainSeconds(torch::serialize::InputArchive& ar) {
    const double v = ReadScalar(ar, "train_seconds").item<double>();
    return std::isfinite(v) && v >= 0 && v < 1e9 ? v : 0.0;
  }

  static std::vector<torch::Tensor> AllTensors(torch::nn::Module& m) {
    std::vector<torch::Tensor> out;
    for (auto& p : m.named_parameters(true)) out.push_back(p.value());
    for (auto& b : m.named_buffers(true)) out.push_back(b.value());
    return out;
  }

  // The weights that are measured, exported and kept in the compact checkpoint: the average when on.
  bool Averaging() const { return o_.ema_kimg > 0; }
  engine::identity::AttributeEncoderImpl& ShippedE() { return Averaging() ? *E_ema_ : *E_; }
  engine::identity::GeneratorImpl& ShippedG() { return Averaging() ? *G_ema_ : *G_; }

  static void CopyWeights(torch::nn::Module& from, torch::nn::Module& to) {
    torch::NoGradGuard no_grad;
    const auto src = AllTensors(from), dst = AllTensors(to);
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }

  // avg <- avg + (1 - beta) (w - avg), beta = 0.5^(batch / half-life in images); the half-life is
  // at most 5 % of the images seen since step 0.
  void UpdateAverage() {
    if (!Averaging()) return;
    torch::NoGradGuard no_grad;
    const double half_life = std::min(o_.ema_kimg * 1000.0, 0.05 * static_cast<double>((step_ + 1) * o_.batch));
    const double beta = std::pow(0.5, o_.batch / std::max(half_life, 1e-8));
    std::pair<torch::nn::Module*, torch::nn::Module*> pairs[] = {{E_.ptr().get(), E_ema_.ptr().get()},
                                                                 {G_.ptr().get(), G_ema_.ptr().get()}};
    for (auto& [raw, avg] : pairs) {
      const auto w = raw->parameters(), a = avg->parameters();
      for (size_t i = 0; i < w.size(); ++i) a[i].lerp_(w[i], 1.0 - beta);
      const auto wb = raw->buffers(), ab = avg->buffers();
      for (size_t i = 0; i < wb.size(); ++i) ab[i].copy_(wb[i]);
    }
  }

  // fp16 weights of E, G and D + step, no optimizer state (a few MB; resumes with a fresh Adam). With
  // the average on, E and G are the averaged weights (the ones exported with it).
  Status SaveCompact(const std::string& path) {
    torch::serialize::OutputArchive ar;
    ar.write("compact_format", torch::tensor(int64_t{1}), true);
    ar.write("step", torch::tensor(step_), true);
    ar.write("train_seconds", torch::tensor(train_seconds_, torch::kFloat64), true);
    ar.write("attr_pool", torch::tensor(E_->options.pool()), true);
    WriteWidths(ar);
    WriteLastRun(ar);
    ar.write("averaged_weights", torch::tensor(int64_t{Averaging() ? 1 : 0}), true);
    std::pair<const char*, torch::nn::Module*> mods[] = {{"E", &ShippedE()}, {"G", &ShippedG()}, {"D", D_.ptr().get()}};
    for (auto& [name, mod] : mods) {
      const auto ts = AllTensors(*mod);
      ar.write(std::string(name) + "_count", torch::tensor(static_cast<int64_t>(ts.size())), true);
      for (size_t i = 0; i < ts.size(); ++i) {
        ar.write(std::string(name) + "_" + std::to_string(i), ts[i].detach().to(torch::kCPU, torch::kHalf), true);
      }
    }
    fs::create_directories(fs::path(path).parent_path());
    return SaveArchiveDurably(ar, path, "compact checkpoint");
  }

  Status LoadCompact(torch::serialize::InputArchive& ar) {
    torch::NoGradGuard no_grad;
    step_ = ReadScalar(ar, "step").item<int64_t>();
    train_seconds_ = ReadTrainSeconds(ar);
    ReadLastRun(ar);
    ckpt_pool_ = ReadPool(ar);
    // A narrower G is read as it was saved, then widened into G_.
    const bool widen = ckpt_widths_ != std::make_pair(G_->options.ch64(), G_->options.ch128());
    Generator saved_g = G_;
    if (widen) saved_g = Generator(GeneratorOptions(G_->options).ch64(ckpt_widths_.first).ch128(ckpt_widths_.second));
    std::pair<const char*, torch::nn::Module*> mods[] = {{"E", E_.ptr().get()}, {"G", saved_g.ptr().get()}, {"D", D_.ptr().get()}};
    for (auto& [name, mod] : mods) {
      auto ts = AllTensors(*mod);
      torch::Tensor count;
      ar.read(std::string(name) + "_count", count, true);
      if (count.item<int64_t>() != static_cast<int64_t>(ts.size())) {
        return InvalidArgumentError(std::string("compact checkpoint: ") + name + " has a different architecture");
      }
      for (size_t i = 0; i < ts.size(); ++i) {
        torch::Tensor v;
        ar.read(std::string(name) + "_" + std::to_string(i), v, true);
        if (v.sizes() != ts[i].sizes()) {
          return InvalidArgumentError(std::string("compact checkpoint: ") + name + " tensor " + std::to_string(i) +
                                      " has the wrong shape");
        }
        ts[i].copy_(v.to(ts[i].device(), ts[i].scalar_type()));
      }
    }
    if (widen) {
      VEIL_RETURN_IF_ERROR(engine::identity::WidenGenerator(*saved_g, *G_));
      std::printf("veil-train-gan: G widened from ch64/ch128 %lld/%lld to %lld/%lld (the same faces; new channels start "
                  "from zero weights)\n", static_cast<long long>(ckpt_widths_.first), static_cast<long long>(ckpt_widths_.second),
                  static_cast<long long>(G_->options.ch64()), static_cast<long long>(G_->options.ch128()));
    }
    warm_from_ = step_;  // fresh Adam state: warm up again
    torch::Tensor averaged;  // absent in checkpoints written before the average
    const bool was_averaged = ar.try_read("averaged_weights", averaged, true) && averaged.item<int64_t>() != 0;
    std::printf("veil-train-gan: resumed %sweights from the compact checkpoint at step %lld (optimizer restarted)\n",
                was_averaged ? "averaged " : "", static_cast<long long>(step_));
    return Status::Ok();
  }

  Status LoadFull(torch::serialize::InputArchive& ar, const std::string& path) {
    try {
      ReadModule(ar, "E", *E_);
      ReadModule(ar, "G", *G_);
      ReadModule(ar, "D", *D_);
      torch::serialize::InputArchive e_ema, g_ema;  // absent before the average existed: set from E, G
      ema_loaded_ = ar.try_read("E_ema", e_ema) && ar.try_read("G_ema", g_ema);
      if (ema_loaded_) {
        E_ema_->load(e_ema);
        G_ema_->load(g_ema);
      }
      ReadOptimizer(ar, "opt_g", *opt_g_);
      ReadOptimizer(ar, "opt_d", *opt_d_);
      step_ = ReadScalar(ar, "step").item<int64_t>();
      train_seconds_ = ReadTrainSeconds(ar);
      ReadLastRun(ar);
      ckpt_pool_ = ReadPool(ar);
    } catch (const std::exception& e) {
      return DataLossError("cannot read the checkpoint " + path + ": " + e.what());
    }
    warm_from_ = -o_.warmup_steps;  // optimizer state restored: no warm-up
    std::printf("veil-train-gan: resumed from %s at step %lld\n", path.c_str(), static_cast<long long>(step_));
    return Status::Ok();
  }

  Status Export() {
#if VEIL_TRAINER_ONLY
    return FailedPreconditionError(kNoExport);
#else
    const fs::path dir(o_.export_dir);
    std::error_code ec;
    fs::create_directories(dir / "train", ec);
    engine::FaceRendererSaveInfo info;
    info.overwrite = true;
    info.fp16 = true;
    auto num = [](double v) {
      std::ostringstream os;
      os << std::setprecision(4) << v;
      return os.str();
    };
    info.info = {{"data", "UTKFace aligned & cropped (non-commercial research use only), re-aligned by Veil, "
                          "1000 images held out"},
                 {"trainer", "veil-train-gan"},
                 {"steps", std::to_string(step_)},
                 {"batch", last_batch_ > 0 ? std::to_string(last_batch_) : "unknown"},
                 {"weights", Averaging() ? "moving average, half-life " + num(o_.ema_kimg) + " kimg" : "raw"},
                 {"train_seconds", num(train_seconds_)},
                 {"device", last_batch_ > 0 ? (last_cuda_ ? "cuda" : last_bf16_ ? "cpu, bfloat16 autocast" : "cpu") : "unknown"},
                 {"holdout_images_evaluated", std::to_string(eval_.size())},
                 {"holdout_psnr_db", num(last_metrics_.psnr)},
                 {"holdout_ssim", num(last_metrics_.ssim)},
                 {"holdout_d_rec", num(last_metrics_.id_rec)},
                 {"holdout_d_swap_target", num(last_metrics_.swap_to_target)},
                 {"holdout_d_swap_orig", num(last_metrics_.swap_to_orig)},
                 {"holdout_detail_rec", num(last_metrics_.detail_rec)},
                 {"holdout_detail_swap", num(last_metrics_.detail_swap)},
                 {"license", "weights trained on UTKFace: non-commercial research use only"}};
    VEIL_RETURN_IF_ERROR(engine::CheckIdentityGain(o_.identity_gain, "--identity-gain"));
    VEIL_RETURN_IF_ERROR(engine::CheckReadBackNoiseRatio(o_.readback_noise_ratio, "--readback-noise-ratio"));
    for (Generator* g : {&G_, &G_ema_}) {
      (*g)->options.identity_gain(o_.identity_gain);
      (*g)->options.readback_noise_ratio(o_.readback_noise_ratio);
    }
    try {
      VEIL_RETURN_IF_ERROR(engine::identity::SaveRendererModels(
          ShippedE(), ShippedG(),
          (dir / "veil-encoder-v1.veilmodel").string(), (dir / "veil-generator-v1.veilmodel").string(), info));
      VEIL_RETURN_IF_ERROR(SaveCompact((dir / "train" / "gan-checkpoint.pt").string()));
    } catch (const std::exception& e) {
      return IoError(std::string("export failed: ") + e.what());
    }
    std::printf("veil-train-gan: exported E, G and the compact checkpoint to %s\n", dir.c_str());
    return Status::Ok();
#endif
  }

  GanTrainOptions o_;
  UtkDataset data_;
  torch::Device device_;
  engine::nets::FaceRecognitionNet recognizer_;
  AttributeEncoder E_;
  Generator G_;
  Discriminator D_;
  AttributeEncoder E_ema_;  // the moving average of E and G (GanTrainOptions::ema_kimg)
  Generator G_ema_;
  bool ema_loaded_ = false;  // read from the full checkpoint (else set from E and G)
  std::unique_ptr<torch::optim::Adam> opt_g_, opt_d_;
  std::vector<size_t> train_, eval_;
  int64_t step_ = 0;
  int64_t ckpt_pool_ = 1;  // E's bottleneck in the checkpoint resumed from
  // G's ch64 and ch128 in the checkpoint resumed from (the defaults for a new run), and its kind.
  std::pair<int64_t, int64_t> ckpt_widths_{GeneratorOptions().ch64(), GeneratorOptions().ch128()};
  bool ckpt_compact_ = false;
  std::string start_path_;                   // StartCheckpoint(), empty for a new run
  torch::serialize::InputArchive start_ar_;  // its contents, from ChooseGeneratorWidths until Restore
  int64_t warm_from_ = 0;
  double train_seconds_ = 0;
  int64_t last_batch_ = 0;  // WriteLastRun; 0: unknown
  bool last_cuda_ = false;
  bool last_bf16_ = false;
  bool bf16_ = false;  // --bf16 on a CPU run (Init)
  Metrics last_metrics_;
  torch::Tensor code_center_;  // 1 x 128, the train codes' mean
  std::ofstream log_;
  bool profile_ = std::getenv("VEIL_GAN_PROFILE") != nullptr;
  Clock::time_point mark_;
};

}  // namespace

Status RunGanTraining(const GanTrainOptions& options) {
  if (options.batch < 2) return InvalidArgumentError("--batch must be at least 2 (identity swaps pair faces)");
  if (options.out_dir.empty()) return InvalidArgumentError("--out is required");
#if VEIL_TRAINER_ONLY
  if (!options.export_dir.empty()) return FailedPreconditionError(kNoExport);
#endif
  if (!(options.flow_swaps >= 0 && options.flow_swaps <= 1)) return InvalidArgumentError("--flow-swaps must be a number in [0, 1]");
  VEIL_ASSIGN_OR_RETURN(UtkDataset data, UtkDataset::Open(options.data_dir));
  if (options.flow_swaps > 0 && !data.has_pseudonyms()) {
    return FailedPreconditionError("--flow-swaps needs the data set's pseudonym table (" + options.data_dir +
                                   "/pseudonyms.f32): make it with veil-train-flow --pseudonyms FLOW_MODEL --data " +
                                   options.data_dir);
  }
  try {
    Trainer t(options, std::move(data));
    VEIL_RETURN_IF_ERROR(t.Init());
    VEIL_RETURN_IF_ERROR(t.Restore());
    VEIL_RETURN_IF_ERROR(t.ApplyPool());
    return t.Run();
  } catch (const std::exception& e) {
    return InternalError(std::string("training failed: ") + e.what());
  }
}

}  // namespace veil::train::gan
