#include "flow/flow_trainer.h"

#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/checkpoint_archive.h"
#include "common/training_log.h"
#include "data/utk_dataset.h"
#include "identity/flow.h"
#include "nets/module_io.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/model_file.h"
#include "veil/engine/recognizer.h"
#include "veil/engine/runtime.h"
#include "veil/keys/secret.h"

namespace veil::train {
namespace {

namespace fs = std::filesystem;
using engine::identity::Flow;
using engine::identity::FlowKeys;
using engine::identity::FlowOptions;
using engine::identity::MakeFlowKeys;
using engine::identity::WipeOnExit;

constexpr int kEvalKeys = 100;  // hold-out codes are split into kEvalKeys groups sharing one key

torch::Tensor Codes(const UtkDataset& ds, const std::vector<size_t>& idx, bool flip) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(idx.size()), 128}, torch::kFloat32);
  for (size_t i = 0; i < idx.size(); ++i)
    std::memcpy(t[static_cast<int64_t>(i)].data_ptr<float>(), flip ? ds.descriptor_flip(idx[i]) : ds.descriptor(idx[i]),
                sizeof(float) * 128);
  return t;
}

keys::SecretBytes EvalKey(int i) {
  const std::string d = keys::Blake2b256("veil-flow-eval-key-" + std::to_string(i));
  return keys::SecretBytes::Copy(d.data(), 32);
}

// The stand-ins for real subkeys that training draws: derived from --seed, the step and the slot,
// so that a run with the same seed draws the same keys (none of them ever protects anything).
keys::SecretBytes TrainingKey(uint64_t seed, int64_t step, const std::string& slot) {
  const std::string d = keys::Blake2b256("veil-flow-train-key-v1:" + std::to_string(seed) + ":" + std::to_string(step) + ":" + slot);
  return keys::SecretBytes::Copy(d.data(), 32);
}

struct Dist {
  std::string name;
  std::vector<float> v;
};

std::string Describe(const std::string& name, const torch::Tensor& d, double threshold, bool above) {
  torch::Tensor s = std::get<0>(d.flatten().to(torch::kFloat32).sort());
  const int64_t n = s.size(0);
  if (n == 0) return name + " n=0";
  auto q = [&](double p) { return s[std::min<int64_t>(n - 1, static_cast<int64_t>(std::llround(p * (n - 1))))].item<float>(); };
  const double frac = (above ? (s > threshold) : (s < threshold)).to(torch::kFloat64).mean().item<double>();
  char buf[320];
  std::snprintf(buf, sizeof buf, "%-34s n=%-6lld mean=%.3f p1=%.3f p5=%.3f p50=%.3f p95=%.3f  frac %s %.2f = %.4f",
                name.c_str(), static_cast<long long>(n), s.mean().item<float>(), q(0.01), q(0.05), q(0.5), q(0.95),
                above ? ">" : "<", threshold, frac);
  return buf;
}

// Squared-distance RBF MMD^2 (biased) with several bandwidths.
torch::Tensor Mmd(const torch::Tensor& x, const torch::Tensor& y) {
  auto k = [](const torch::Tensor& a, const torch::Tensor& b) {
    torch::Tensor d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1);
    torch::Tensor out = torch::zeros_like(d2);
    for (double s : {0.15, 0.3, 0.6, 1.2}) out = out + torch::exp(-d2 / (2 * s * s));
    return out;
  };
  return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean();
}

// An informed attacker (as in `veil eval`, on codes): knows (original, pseudonym) pairs under one key
// and fits a ridge-regularized linear guess of the original from the pseudonym as read back (`y`,
// with its read error) on the rows of `fit`, then guesses the rows of `test`. The ridge strength is
// `lambda_rel` times the mean diagonal of the fit's Gram matrix. Differentiable in y (fit included):
// training pushes the flow away from maps that such a fit learns.
torch::Tensor LinearGuess(const torch::Tensor& y, const torch::Tensor& z, const torch::Tensor& fit, const torch::Tensor& test,
                          double lambda_rel) {
  const torch::Tensor ya = y.index_select(0, fit), za = z.index_select(0, fit);
  const torch::Tensor my = ya.mean(0, true), mz = za.mean(0, true);
  const torch::Tensor xa = (ya - my).to(torch::kFloat64);
  const torch::Tensor gram = torch::matmul(xa.t(), xa);
  const double lambda = std::max(1e-8, lambda_rel * gram.diagonal().sum().item<double>() / static_cast<double>(gram.size(0)));
  const torch::Tensor w = torch::linalg_solve(gram + lambda * torch::eye(gram.size(0), torch::kFloat64),
                                              torch::matmul(xa.t(), (za - mz).to(torch::kFloat64)));
  return (torch::matmul((y.index_select(0, test) - my).to(torch::kFloat64), w)).to(torch::kFloat32) + mz;
}

// Rank-1 re-identification: the fraction of guesses whose nearest code among `originals` is their own.
// (Chance: 1 / originals.)
double RankOne(const torch::Tensor& guesses, const torch::Tensor& originals) {
  const torch::Tensor nearest = std::get<1>(torch::cdist(guesses, originals).min(1));
  return nearest.eq(torch::arange(guesses.size(0), torch::kInt64)).to(torch::kFloat64).mean().item<double>();
}

using FlowFn = std::function<torch::Tensor(const torch::Tensor&, const keys::SecretBytes&, bool inverse)>;

// The (a)-(e), (r) and (l) report on the hold-out codes; returns lines.
std::vector<std::string> Evaluate(const FlowFn& f, const torch::Tensor& z, const torch::Tensor& zf,
                                  const torch::Tensor& zj, const torch::Tensor& bank) {
  torch::NoGradGuard ng;
  const int64_t n = z.size(0);
  if (n < 2) throw std::runtime_error("the flow evaluation needs 2 hold-out codes at least");  // checked by callers
  const int nkeys = static_cast<int>(std::min<int64_t>(kEvalKeys, n / 2));  // a toy hold-out set: fewer keys
  const int64_t g = n / nkeys;
  std::vector<torch::Tensor> y1, y2, yf, yj, back;
  for (int k = 0; k < nkeys; ++k) {
    const keys::SecretBytes k1 = EvalKey(k), k2 = EvalKey(k + kEvalKeys);
    torch::Tensor zk = z.narrow(0, k * g, g);
    y1.push_back(f(zk, k1, false));
    y2.push_back(f(zk, k2, false));
    if (zf.defined()) yf.push_back(f(zf.narrow(0, k * g, g), k1, false));
    if (zj.defined()) yj.push_back(f(zj.narrow(0, k * g, g), k1, false));
    back.push_back(f(y1.back(), k1, true));
  }
  const int64_t m = g * nkeys;
  torch::Tensor zz = z.narrow(0, 0, m);
  torch::Tensor Y1 = torch::cat(y1), Y2 = torch::cat(y2), B = torch::cat(back);
  std::vector<std::string> out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "hold-out codes %lld, %d keys x %lld codes; train bank %lld codes",
                static_cast<long long>(m), nkeys, static_cast<long long>(g), static_cast<long long>(bank.size(0)));
  out.push_back(buf);
  std::snprintf(buf, sizeof buf, "invertibility: max |F^-1(F(z)) - z| = %.3g", (B - zz).abs().max().item<double>());
  out.push_back(buf);
  // (a) plausibility.
  torch::Tensor nn_real = std::get<0>(torch::cdist(zz, bank).min(1));
  torch::Tensor nn_out = std::get<0>(torch::cdist(Y1, bank).min(1));
  out.push_back(Describe("(a) nearest train code, real z", nn_real, 0.6, true));
  out.push_back(Describe("(a) nearest train code, F(z,k)", nn_out, 0.6, true));
  torch::Tensor iu = torch::triu_indices(m, m, 1);
  auto pair_d = [&](const torch::Tensor& a) {
    torch::Tensor d = torch::cdist(a, a);
    return d.index({iu[0], iu[1]});
  };
  out.push_back(Describe("(a) pairwise distance, real z", pair_d(zz), 0.6, true));
  out.push_back(Describe("(a) pairwise distance, F(z,k)", pair_d(Y1), 0.6, true));
  out.push_back(Describe("(a) norm, real z", zz.norm(2, 1), 1.0, true));
  out.push_back(Describe("(a) norm, F(z,k)", Y1.norm(2, 1), 1.0, true));
  std::snprintf(buf, sizeof buf, "(a) MMD^2 F(z,k) vs hold-out z = %.5f; an even sample of train codes vs hold-out z = %.5f",
                Mmd(Y1, zz).item<double>(),
                Mmd(bank.index_select(0, torch::arange(0, std::min(m, bank.size(0)), torch::kInt64) *
                                             (bank.size(0) / std::min(m, bank.size(0)))),
                    zz)
                    .item<double>());
  out.push_back(buf);
  // (b), (c).
  out.push_back(Describe("(b) |F(z,k) - z|", (Y1 - zz).norm(2, 1), 0.6, true));
  out.push_back(Describe("(c) |F(z,k1) - F(z,k2)|", (Y1 - Y2).norm(2, 1), 0.6, true));
  // (d) pairs within a key group.
  std::vector<torch::Tensor> din, dout;
  torch::Tensor gi = torch::triu_indices(g, g, 1);
  for (int k = 0; k < nkeys; ++k) {
    torch::Tensor a = zz.narrow(0, k * g, g), b = Y1.narrow(0, k * g, g);
    din.push_back(torch::cdist(a, a).index({gi[0], gi[1]}));
    dout.push_back(torch::cdist(b, b).index({gi[0], gi[1]}));
  }
  torch::Tensor Din = torch::cat(din), Dout = torch::cat(dout);
  out.push_back(Describe("(d) |z1 - z2| (input pairs)", Din, 0.6, true));
  out.push_back(Describe("(d) |F(z1,k) - F(z2,k)| all pairs", Dout, 0.6, true));
  torch::Tensor apart = Din > 0.6;
  out.push_back(Describe("(d) same, pairs with |z1-z2| > 0.6", Dout.index({apart}), 0.6, true));
  // (r) a pseudonym read back off by e, |e| = 0.25 and 0.5: how far from the original does the
  // inverse land? (Keyed restore without a payload reads the pseudonym back from a rendered face,
  // about 0.5 off with today's generator.) e: the difference of two train codes (fixed pseudo-
  // random pairs), scaled: errors in the recognizer's own subspace. (An error outside it, in the
  // directions where real codes hardly vary, is magnified by the whitening without bound: keyed
  // restore runs IdentityFlow::Denoise on the read-back first.)
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20261201);
  torch::Tensor ia = at::randint(bank.size(0), {m}, gen, torch::kInt64), ib = at::randint(bank.size(0), {m}, gen, torch::kInt64);
  torch::Tensor dir = bank.index_select(0, ia) - bank.index_select(0, ib);
  dir = dir / (dir.norm(2, 1, true) + 1e-6);
  for (double radius : {0.25, 0.5}) {
    torch::Tensor e = dir * radius;
    std::vector<torch::Tensor> inv;
    for (int k = 0; k < nkeys; ++k) inv.push_back(f(Y1.narrow(0, k * g, g) + e.narrow(0, k * g, g), EvalKey(k), true));
    std::snprintf(buf, sizeof buf, "(r) |F^-1(F(z,k) + e) - z|, |e|=%.2f", radius);
    out.push_back(Describe(buf, (torch::cat(inv) - zz).norm(2, 1), 0.6, false));
  }
  // (l) the informed attacker: all codes under one key, read back 0.4 off, a linear guess fitted on
  // the even rows and tried on the odd ones (rank 1 among the odd originals; chance 2/m), at the
  // ridge strength that serves it best (the attacker's upper bound over a grid).
  {
    const torch::Tensor yk = f(zz, EvalKey(0), false) + dir * 0.4;
    const torch::Tensor even = torch::arange(0, m, 2, torch::kInt64), odd = torch::arange(1, m, 2, torch::kInt64);
    const torch::Tensor zo = zz.index_select(0, odd);
    double best = -1, best_lambda = 0;
    torch::Tensor best_guess;
    for (double lambda : {1e-4, 1e-3, 1e-2, 1e-1, 1.0}) {
      const torch::Tensor guess = LinearGuess(yk, zz, even, odd, lambda);
      const double r1 = RankOne(guess, zo);
      if (r1 > best) best = r1, best_lambda = lambda, best_guess = guess;
    }
    std::snprintf(buf, sizeof buf, "(l) linear attacker, one key, read 0.40 off: rank-1 %.4f (chance %.4f; best ridge %.0e)", best,
                  1.0 / static_cast<double>(odd.size(0)), best_lambda);
    out.push_back(buf);
    out.push_back(Describe("(l) |guess - z|", (best_guess - zo).norm(2, 1), 0.6, false));
  }
  // (e) the mirrored chip of the same face.
  if (zf.defined()) {
    torch::Tensor YF = torch::cat(yf);
    torch::Tensor zfm = zf.narrow(0, 0, m);
    out.push_back(Describe("(e) |z - z_flip| (input)", (zz - zfm).norm(2, 1), 0.6, false));
    out.push_back(Describe("(e) |F(z,k) - F(z_flip,k)|", (Y1 - YF).norm(2, 1), 0.6, false));
  }
  if (zj.defined()) {
    torch::Tensor YJ = torch::cat(yj);
    torch::Tensor zjm = zj.narrow(0, 0, m);
    out.push_back(Describe("(e) |z - z_flip_jpeg60| (input)", (zz - zjm).norm(2, 1), 0.6, false));
    out.push_back(Describe("(e) |F(z,k) - F(z_flip_jpeg60,k)|", (Y1 - YJ).norm(2, 1), 0.6, false));
  }
  return out;
}

struct Data {
  torch::Tensor train, holdout;
  // Same-face codes: the recognizer's descriptor of the mirrored 128 crop (and of a JPEG q=60
  // re-encoding of it, hold-out only), next to the code of the original 150 chip.
  torch::Tensor near_idx;      // [S] train rows with a same-face code
  torch::Tensor train_near;    // [S, 128]
  torch::Tensor holdout_flip;  // [H, 128]
  torch::Tensor holdout_jpeg;  // [H, 128]
};

enum class Variant { kFlip, kJpeg };

// Descriptors of a variant of the 128 crops, cached in `cache` (N x 128 float32).
StatusOr<torch::Tensor> VariantCodes(const UtkDataset& ds, const std::vector<size_t>& idx, Variant v,
                                     const std::string& cache, engine::Recognizer& rec,
                                     const std::function<void(const std::string&)>& log) {
  const int64_t n = static_cast<int64_t>(idx.size());
  torch::Tensor out = torch::empty({n, 128}, torch::kFloat32);
  if (!cache.empty() && fs::exists(cache) && fs::file_size(cache) == static_cast<uintmax_t>(n * 512)) {
    std::ifstream in(cache, std::ios::binary);
    in.read(static_cast<char*>(out.data_ptr()), n * 512);
    if (in) return out;
  }
  if (log) log("computing " + std::to_string(n) + " same-face descriptors -> " + cache);
  std::vector<cv::Mat> batch;
  int64_t done = 0;
  auto flush = [&]() -> Status {
    VEIL_ASSIGN_OR_RETURN(auto d, rec.DescribeAligned(batch));
    for (const auto& x : d) std::memcpy(out[done++].data_ptr<float>(), x.data(), 512);
    batch.clear();
    return Status::Ok();
  };
  for (size_t i : idx) {
    cv::Mat m;
    cv::flip(cv::Mat(kUtkCropSize, kUtkCropSize, CV_8UC3, const_cast<uint8_t*>(ds.crop_data(i))), m, 1);
    if (v == Variant::kJpeg) {
      std::vector<uchar> buf;
      cv::imencode(".jpg", m, buf, {cv::IMWRITE_JPEG_QUALITY, 60});
      m = cv::imdecode(buf, cv::IMREAD_COLOR);
    }
    batch.push_back(m);
    if (batch.size() == 32) VEIL_RETURN_IF_ERROR(flush());
  }
  if (!batch.empty()) VEIL_RETURN_IF_ERROR(flush());
  if (!cache.empty()) {
    std::ofstream f(cache + ".tmp", std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(out.data_ptr()), n * 512);
    f.close();
    std::error_code ec;
    if (f) fs::rename(cache + ".tmp", cache, ec);
  }
  return out;
}

StatusOr<Data> LoadData(const std::string& dir, const std::string& cache_dir, int near_train,
                        const std::function<void(const std::string&)>& log) {
  VEIL_ASSIGN_OR_RETURN(UtkDataset ds, UtkDataset::Open(dir));
  Data d;
  size_t twins = 0;
  const auto tr = ds.TrainIndices(&twins), ho = ds.Indices(Split::kHoldout);
  if (log) log(std::to_string(tr.size()) + " train codes (" + std::to_string(twins) + " left out: the same photo as a held-out face)");
  if (tr.size() < 4 || ho.size() < 2) {
    return FailedPreconditionError(dir + " has " + std::to_string(tr.size()) + " train and " + std::to_string(ho.size()) +
                                   " hold-out faces; the flow needs 4 and 2 at least");
  }
  d.train = Codes(ds, tr, false);
  d.holdout = Codes(ds, ho, false);
  // The first near_train train rows (file order is by age, so take an even spread instead).
  std::vector<size_t> near_rows, near_ds;
  const size_t s = std::min(tr.size(), static_cast<size_t>(std::max(0, near_train)));
  for (size_t k = 0; k < s; ++k) near_rows.push_back(k * tr.size() / s);
  for (size_t r : near_rows) near_ds.push_back(tr[r]);
  d.near_idx = torch::tensor(std::vector<int64_t>(near_rows.begin(), near_rows.end()), torch::kInt64);
  if (ds.has_flip()) {
    d.train_near = Codes(ds, near_ds, true);
    d.holdout_flip = Codes(ds, ho, true);
  }
  engine::RecognizerParams rp;
  rp.max_batch = 32;
  VEIL_ASSIGN_OR_RETURN(auto rec, engine::Recognizer::Create(rp));
  std::error_code ec;
  if (!cache_dir.empty()) fs::create_directories(cache_dir, ec);
  const std::string tag = cache_dir.empty() ? "" : cache_dir + "/" + std::to_string(ds.size()) + "-";
  if (!d.train_near.defined() && s > 0) {
    VEIL_ASSIGN_OR_RETURN(d.train_near, VariantCodes(ds, near_ds, Variant::kFlip,
                                                     tag.empty() ? "" : tag + "train-flip-" + std::to_string(s) + "-of-" + std::to_string(tr.size()) + ".f32", *rec, log));
  }
  if (!d.holdout_flip.defined()) {
    VEIL_ASSIGN_OR_RETURN(d.holdout_flip, VariantCodes(ds, ho, Variant::kFlip, tag.empty() ? "" : tag + "holdout-flip.f32", *rec, log));
  }
  VEIL_ASSIGN_OR_RETURN(d.holdout_jpeg, VariantCodes(ds, ho, Variant::kJpeg, tag.empty() ? "" : tag + "holdout-flipjpeg.f32", *rec, log));
  return d;
}

void Log(const FlowTrainOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

FlowOptions ArchFrom(const FlowTrainOptions& o) {
  FlowOptions f;
  f.couplings(o.couplings).hidden(o.hidden).whiten(o.whiten).max_log_scale(o.max_log_scale).signal_dims(o.signal_dims);
  return f;
}

Status SaveCheckpoint(const std::string& path, Flow& flow, torch::optim::Adam& opt, int64_t step) {
  try {
    torch::serialize::OutputArchive ar;
    WriteModule(ar, "model", *flow);
    WriteOptimizer(ar, "optimizer", opt);
    ar.write("step", torch::tensor(step, torch::kInt64));
    return SaveArchiveDurably(ar, path, "checkpoint");
  } catch (const std::exception& e) {
    return IoError(std::string("cannot save checkpoint: ") + e.what());
  }
}

}  // namespace

Status TrainFlowImpl(const FlowTrainOptions& o);

Status TrainFlow(const FlowTrainOptions& o) {
  try {
    return TrainFlowImpl(o);
  } catch (const std::exception& e) {
    return InternalError(std::string("flow training failed: ") + e.what());
  }
}

Status TrainFlowImpl(const FlowTrainOptions& o) {
  engine::InitRuntimeOnce();
  if (o.threads > 0) at::set_num_threads(o.threads);
  torch::manual_seed(o.seed);
  VEIL_ASSIGN_OR_RETURN(Data data, LoadData(o.data_dir, o.work_dir + "/cache", o.near_train, o.log));
  std::error_code ec;
  fs::create_directories(o.work_dir, ec);
  if (ec) return IoError("cannot create " + o.work_dir);
  const FlowOptions arch = ArchFrom(o);
  Flow flow(arch);
  {
    torch::Tensor mean = data.train.mean(0);
    torch::Tensor c = (data.train - mean).to(torch::kFloat64);
    flow->SetStatistics(mean, torch::matmul(c.t(), c) / (c.size(0) - 1));
  }
  torch::optim::Adam opt(flow->parameters(), torch::optim::AdamOptions(o.lr));
  int64_t step = 0;
  const std::string ckpt = o.work_dir + "/ckpt.pt";
  if (fs::exists(ckpt)) {
    try {
      torch::serialize::InputArchive ar;
      VEIL_RETURN_IF_ERROR(LoadArchive(ckpt, torch::kCPU, ar, "checkpoint"));
      ReadModule(ar, "model", *flow);
      ReadOptimizer(ar, "optimizer", opt);
      torch::Tensor s;
      ar.read("step", s);
      step = s.item<int64_t>();
      Log(o, "resumed from " + ckpt + " at step " + std::to_string(step));
    } catch (const std::exception& e) {
      return DataLossError(std::string("cannot resume from ") + ckpt + ": " + e.what() +
                           " (remove it to start over, or pass the same architecture options)");
    }
  }
  const int64_t nnear = data.train_near.defined() ? data.train_near.size(0) : 0;
  if (nnear == 0) Log(o, "warning: no same-face codes: locality uses Gaussian perturbations of the codes instead");

  const int64_t ntr = data.train.size(0);
  const int64_t nbank = std::min<int64_t>(4096, ntr / 2);
  // The real-to-real nearest-neighbour level for a bank of nbank codes (codes outside the bank).
  torch::Tensor perm0 = torch::randperm(ntr, torch::kInt64);
  double nn_target = 0;
  {
    torch::NoGradGuard ng;
    torch::Tensor bank = data.train.index_select(0, perm0.narrow(0, 0, nbank));
    torch::Tensor probe = data.train.index_select(0, perm0.narrow(0, nbank, std::min<int64_t>(2048, ntr - nbank)));
    torch::Tensor nn = std::get<0>(torch::cdist(probe, bank).min(1));
    nn_target = std::get<0>(nn.sort())[static_cast<int64_t>(0.9 * (nn.size(0) - 1))].item<double>();
    Log(o, "real-to-real nearest-neighbour distance (bank " + std::to_string(nbank) + "): p90 = " + std::to_string(nn_target));
  }

  std::ofstream log_tsv;
  VEIL_RETURN_IF_ERROR(OpenTrainingLog(
      o.work_dir + "/log.tsv",
      "step\tseconds\tloss\tfar\tkeys\tapart\tnear\tmmd\tnn\tfrac_far\tfrac_keys\tfrac_apart\tfrac_near\tnn_mean\tlin_rank1",
      log_tsv));
  const int64_t groups = std::max(1, o.keys_per_batch);
  const int64_t per = std::max<int64_t>(2, o.batch / groups);
  const int64_t b = per * groups;
  std::vector<int64_t> rows;
  for (int64_t gi = 0; gi < groups; ++gi)
    for (int64_t j = 0; j < per; ++j) rows.push_back(gi);
  torch::Tensor pi = torch::triu_indices(per, per, 1);

  auto fn = [&](const torch::Tensor& z, const keys::SecretBytes& key, bool inverse) -> torch::Tensor {
    auto k = MakeFlowKeys(arch, {&key});
    if (!k.ok()) throw std::runtime_error(k.status().ToString());
    torch::Tensor r = inverse ? flow->inverse(z, *k) : flow->forward(z, *k);
    k->Wipe();
    return r;
  };
  auto eval = [&]() {
    flow->eval();
    for (const auto& line : Evaluate(fn, data.holdout, data.holdout_flip, data.holdout_jpeg, data.train)) Log(o, "eval@" + std::to_string(step) + " " + line);
    flow->train();
  };
  if (step == 0) eval();

  const auto t0 = std::chrono::steady_clock::now();
  auto last_ckpt = t0;
  flow->train();
  while (step < o.steps) {
    std::vector<keys::SecretBytes> k1, k2;
    std::vector<const keys::SecretBytes*> p1, p2;
    for (int64_t gi = 0; gi < groups; ++gi) {
      k1.push_back(TrainingKey(o.seed, step, "a" + std::to_string(gi)));
      k2.push_back(TrainingKey(o.seed, step, "b" + std::to_string(gi)));
    }
    for (int64_t gi = 0; gi < groups; ++gi) p1.push_back(&k1[gi]), p2.push_back(&k2[gi]);
    VEIL_ASSIGN_OR_RETURN(FlowKeys K1, MakeFlowKeys(arch, p1, rows));
    WipeOnExit wipe_k1(K1);
    VEIL_ASSIGN_OR_RETURN(FlowKeys K2, MakeFlowKeys(arch, p2, rows));
    WipeOnExit wipe_k2(K2);
    torch::Tensor idx = torch::randint(ntr, {b}, torch::kInt64);
    torch::Tensor z = data.train.index_select(0, idx);
    // Same-face pairs (the locality loss) from the rows that have a same-face code.
    torch::Tensor zs, zn;
    if (nnear > 0) {
      torch::Tensor j = torch::randint(nnear, {b}, torch::kInt64);
      zs = data.train.index_select(0, data.near_idx.index_select(0, j));
      zn = data.train_near.index_select(0, j);
    } else {
      zs = z;
      zn = z + 0.3 / std::sqrt(128.0) * torch::randn_like(z);
    }
    torch::Tensor real = data.train.index_select(0, torch::randint(ntr, {b}, torch::kInt64));
    torch::Tensor bank = data.train.index_select(0, torch::randint(ntr, {nbank}, torch::kInt64));

    torch::Tensor y1 = flow->forward(z, K1);
    torch::Tensor y2 = flow->forward(z, K2);
    FlowKeys K1x2;
    WipeOnExit wipe_k1x2(K1x2);
    K1x2.cond = torch::cat({K1.cond, K1.cond});
    K1x2.q = torch::cat({K1.q, K1.q});
    torch::Tensor pair = flow->forward(torch::cat({zs, zn}), K1x2);
    auto dist = [](const torch::Tensor& a, const torch::Tensor& c) { return ((a - c).pow(2).sum(1) + 1e-9).sqrt(); };
    torch::Tensor d_far = dist(y1, z), d_keys = dist(y1, y2), d_near = dist(pair.narrow(0, 0, b), pair.narrow(0, b, b));
    torch::Tensor l_far = torch::relu(o.margin_far - d_far).mean();
    torch::Tensor l_keys = torch::relu(o.margin_far - d_keys).mean();
    torch::Tensor l_near = torch::relu(d_near - o.margin_near).mean();
    // (d) pairs inside each key group.
    torch::Tensor zg = z.view({groups, per, 128}), yg = y1.view({groups, per, 128});
    auto pd = [&](const torch::Tensor& t) {
      torch::Tensor d2 = (t.unsqueeze(2) - t.unsqueeze(1)).pow(2).sum(-1) + 1e-9;
      return d2.sqrt().index({torch::indexing::Slice(), pi[0], pi[1]});
    };
    torch::Tensor din = pd(zg).detach(), dout = pd(yg);
    torch::Tensor apart = (din > 0.6).to(torch::kFloat32);
    torch::Tensor l_apart = (torch::relu(o.margin_apart - dout) * apart).sum() / apart.sum().clamp_min(1);
    torch::Tensor l_mmd = Mmd(y1, real);
    torch::Tensor nn = std::get<0>((torch::cdist(y1, bank)).min(1));
    torch::Tensor l_nn = torch::relu(nn - nn_target).mean();
    torch::Tensor loss = o.w_far * l_far + o.w_keys * l_keys + o.w_apart * l_apart + o.w_near * l_near +
                         o.w_mmd * l_mmd + o.w_nn * l_nn;
    // (l) the informed attacker under one key: its linear guess must stay margin_lin from the truth.
    double lin_rank1 = std::nan("");  // logged as nan without the term
    FlowKeys KL;
    WipeOnExit wipe_kl(KL);  // after the backward pass, which still needs it
    if (o.w_lin > 0) {
      const int64_t nl = std::max<int64_t>(2 * 160, o.lin_batch);
      keys::SecretBytes kl = TrainingKey(o.seed, step, "lin");
      VEIL_ASSIGN_OR_RETURN(KL, MakeFlowKeys(arch, {&kl}));  // one row: the flow broadcasts it over the batch
      const torch::Tensor zl = data.train.index_select(0, torch::randint(ntr, {nl}, torch::kInt64));
      torch::Tensor e = data.train.index_select(0, torch::randint(ntr, {nl}, torch::kInt64)) -
                        data.train.index_select(0, torch::randint(ntr, {nl}, torch::kInt64));
      e = e / (e.norm(2, 1, true) + 1e-6) * o.lin_read_error;
      const torch::Tensor yl = flow->forward(zl, KL) + e;
      const torch::Tensor fit = torch::arange(0, nl / 2, torch::kInt64), test = torch::arange(nl / 2, nl, torch::kInt64);
      const torch::Tensor guess = LinearGuess(yl, zl, fit, test, 1e-3);
      const torch::Tensor zt = zl.index_select(0, test);
      loss = loss + o.w_lin * torch::relu(o.margin_lin - dist(guess, zt)).mean();
      // ... while restore, which knows the key, still inverts a read-back error without magnifying
      // it: |F^-1(F(z,k) + e) - z| < inv_gain |e| (the (r) rows of the evaluation).
      const torch::Tensor back = flow->inverse(yl.narrow(0, 0, nl / 2), KL);
      loss = loss + o.w_lin * torch::relu(dist(back, zl.narrow(0, 0, nl / 2)) - o.inv_gain * o.lin_read_error).mean();
      {
        torch::NoGradGuard ng;
        lin_rank1 = RankOne(guess, zt);
      }
    }
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(flow->parameters(), 1.0);
    opt.step();
    ++step;

    const auto now = std::chrono::steady_clock::now();
    if (step % o.log_every == 0 || step == o.steps) {
      torch::NoGradGuard ng;
      const double secs = std::chrono::duration<double>(now - t0).count();
      auto fr = [](const torch::Tensor& t) { return t.to(torch::kFloat64).mean().item<double>(); };
      const double f_far = fr(d_far > 0.6), f_keys = fr(d_keys > 0.6), f_near = fr(d_near < 0.6);
      const double f_apart = ((dout > 0.6).to(torch::kFloat32) * apart).sum().item<double>() /
                             std::max(1.0, apart.sum().item<double>());
      char buf[512];
      std::snprintf(buf, sizeof buf, "%lld\t%.0f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.5f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f",
                    static_cast<long long>(step), secs, loss.item<double>(), l_far.item<double>(),
                    l_keys.item<double>(), l_apart.item<double>(), l_near.item<double>(), l_mmd.item<double>(),
                    l_nn.item<double>(), f_far, f_keys, f_apart, f_near, nn.mean().item<double>(), lin_rank1);
      log_tsv << buf << "\n";
      log_tsv.flush();
      Log(o, std::string("step ") + buf);
    }
    if (std::chrono::duration<double>(now - last_ckpt).count() >= o.checkpoint_seconds || step == o.steps) {
      VEIL_RETURN_IF_ERROR(SaveCheckpoint(ckpt, flow, opt, step));
      last_ckpt = now;
    }
    if (o.eval_every > 0 && step % o.eval_every == 0 && step != o.steps) eval();
  }
  eval();

  if (!o.export_path.empty()) {
    engine::ModelFileContents m;
    m.model_id = o.model_id;
    m.kind = engine::kIdentityFlowKind;
    m.options = arch.ToMap();
    m.tensors = engine::ModelTensors(*flow, /*fp16=*/false);
    m.created_unix = static_cast<int64_t>(std::time(nullptr));
    m.info["data"] = "UTKFace aligned&cropped, train split of utkface-v1 (hold-out: 1,000 smallest BLAKE2b(file name)); "
                     "non-commercial research use only";
    m.info["steps"] = std::to_string(step);
    m.info["batch"] = std::to_string(b) + " codes, " + std::to_string(groups) + " random keys per batch";
    m.info["compute"] = "CPU, " + std::to_string(at::get_num_threads()) + " threads";
    m.info["losses"] = "hinges: far " + std::to_string(o.margin_far) + ", apart " + std::to_string(o.margin_apart) +
                       ", near " + std::to_string(o.margin_near) + "; RBF MMD; nearest-real hinge";
    if (o.w_lin > 0) {
      m.info["losses"] += "; informed attacker: weight " + std::to_string(o.w_lin) + ", margin " + std::to_string(o.margin_lin) +
                          ", read error " + std::to_string(o.lin_read_error) + ", inverse gain " + std::to_string(o.inv_gain) +
                          ", " + std::to_string(o.lin_batch) + " codes per key";
    }
    VEIL_RETURN_IF_ERROR(engine::SaveModelFile(o.export_path, m, /*overwrite=*/true));
    Log(o, "exported " + o.export_path);
  }
  return Status::Ok();
}

Status EvaluateFlowFile(const std::string& model_path, const std::string& data_dir,
                        const std::function<void(const std::string&)>& log) {
  VEIL_ASSIGN_OR_RETURN(auto flow, engine::IdentityFlow::Load(model_path));
  VEIL_ASSIGN_OR_RETURN(Data data, LoadData(data_dir, DefaultTrainDir() + "/flow/cache", 0, log));
  Status failure;
  FlowFn fn = [&](const torch::Tensor& z, const keys::SecretBytes& key, bool inverse) -> torch::Tensor {
    std::vector<engine::Descriptor> in(static_cast<size_t>(z.size(0)));
    torch::Tensor zc = z.contiguous();
    for (size_t i = 0; i < in.size(); ++i)
      std::memcpy(in[i].data(), zc[static_cast<int64_t>(i)].data_ptr<float>(), sizeof(float) * 128);
    auto r = inverse ? flow->InverseBatch(in, key) : flow->ForwardBatch(in, key);
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    torch::Tensor out = torch::empty_like(zc);
    for (size_t i = 0; i < in.size(); ++i)
      std::memcpy(out[static_cast<int64_t>(i)].data_ptr<float>(), (*r)[i].data(), sizeof(float) * 128);
    return out;
  };
  try {
    log("model " + model_path + " (" + flow->model_id() + ", sha256 " + flow->model_sha256() + ")");
    for (const auto& line : Evaluate(fn, data.holdout, data.holdout_flip, data.holdout_jpeg, data.train)) log(line);
  } catch (const std::exception& e) {
    return InternalError(std::string("evaluation failed: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace veil::train
