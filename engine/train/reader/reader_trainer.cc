// The pseudonym reader's training loop (reader_trainer.h).
#include "reader/reader_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "common/checkpoint_archive.h"
#include "common/training_log.h"
#include "data/utk_dataset.h"
#include "identity/flow.h"
#include "identity/generator.h"
#include "identity/pseudonym_reader_net.h"
#include "nets/face_recognition_net.h"
#include "nets/module_io.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/model_file.h"
#include "veil/engine/pseudonym_reader.h"
#include "veil/engine/runtime.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/secret.h"

namespace veil::train::reader {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr int kCrop = 128;

double Seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What the pipeline writes: 8-bit pixels.
torch::Tensor Quantize(const torch::Tensor& y) { return y.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().div(127.5).sub(1.0); }

class Trainer {
 public:
  Trainer(const ReaderTrainOptions& o, UtkDataset data) : o_(o), data_(std::move(data)), rng_(o.seed) {}

  Status Init() {
    engine::InitRuntimeOnce();
    if (o_.threads > 0) torch::set_num_threads(o_.threads);
    torch::manual_seed(o_.seed);
    const fs::path dir(o_.models_dir);
    VEIL_ASSIGN_OR_RETURN(auto e, engine::LoadModelFile((dir / "veil-encoder-v1.veilmodel").string()));
    VEIL_ASSIGN_OR_RETURN(auto g, engine::LoadModelFile((dir / "veil-generator-v1.veilmodel").string()));
    VEIL_ASSIGN_OR_RETURN(auto f, engine::LoadModelFile((dir / engine::kIdentityFlowFile).string()));
    VEIL_ASSIGN_OR_RETURN(auto eo, engine::identity::AttributeEncoderOptions::FromMap(e.options));
    VEIL_ASSIGN_OR_RETURN(auto go, engine::identity::GeneratorOptions::FromMap(g.options));
    VEIL_ASSIGN_OR_RETURN(auto fo, engine::identity::FlowOptions::FromMap(f.options));
    E_ = engine::identity::AttributeEncoder(eo);
    G_ = engine::identity::Generator(go);
    F_ = engine::identity::Flow(fo);
    VEIL_RETURN_IF_ERROR(engine::LoadModuleTensors(*E_, e).WithContext("attribute encoder"));
    VEIL_RETURN_IF_ERROR(engine::LoadModuleTensors(*G_, g).WithContext("generator"));
    VEIL_RETURN_IF_ERROR(engine::LoadModuleTensors(*F_, f).WithContext("identity flow"));
    for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(E_.get()), static_cast<torch::nn::Module*>(G_.get()),
                                 static_cast<torch::nn::Module*>(F_.get())}) {
      m->eval();
      for (auto& p : m->parameters()) p.set_requires_grad(false);
    }
    gain_ = static_cast<float>(go.identity_gain());
    generator_sha256_ = g.sha256_hex;
    flow_sha256_ = f.sha256_hex;
    SetRatio(o_.denoise_ratio >= 0 ? o_.denoise_ratio : go.readback_noise_ratio());
    VEIL_ASSIGN_OR_RETURN(auto w, engine::TfjsWeights::Load(engine::ResolveModelsDir(""), "face_recognition_model", true));
    VEIL_RETURN_IF_ERROR(P_->LoadFrom(w));
    VEIL_RETURN_IF_ERROR(dlib_->LoadFrom(w));
    dlib_->eval();
    std::vector<torch::Tensor> trainable;
    for (auto& b : P_->buffers()) {  // face-api's weights are buffers of the inference module
      b.set_requires_grad(true);
      trainable.push_back(b);
    }
    opt_ = std::make_unique<torch::optim::Adam>(trainable, torch::optim::AdamOptions(o_.lr));
    size_t twins = 0;
    train_ = data_.TrainIndices(&twins);
    const auto hold = data_.Indices(Split::kHoldout);
    std::printf("veil-train-reader: %zu train faces (%zu left out: the same photo as a held-out face)\n", train_.size(), twins);
    holdout_.assign(hold.begin(), hold.begin() + std::min<size_t>(hold.size(), static_cast<size_t>(o_.holdout_eval)));
    if (train_.empty() || holdout_.empty()) return FailedPreconditionError("the data set has no train or held-out images");
    std::error_code ec;
    fs::create_directories(o_.out_dir, ec);
    if (ec) return IoError("cannot create " + o_.out_dir + ": " + ec.message());
    const std::string ckpt = (fs::path(o_.out_dir) / "reader.pt").string();
    if (o_.resume && fs::exists(ckpt)) {
      VEIL_RETURN_IF_ERROR(Load(ckpt));
    } else if (!o_.resume_from.empty()) {
      VEIL_RETURN_IF_ERROR(LoadModel(o_.resume_from));
    }
    return OpenLog();
  }

  // Denoise (IdentityFlow::Denoise) as one fixed matrix: mean + (r - mean) A^-T.
  void SetRatio(double ratio) {
    torch::NoGradGuard no_grad;
    denoise_ = torch::linalg_inv(F_->DenoiseSystem(ratio)).t().to(torch::kFloat32);
    mean_ = F_->Whitening().first;
    ratio_ = ratio;
  }

  // A resumed reader keeps its denoise ratio unless --denoise-ratio says otherwise.
  void AdoptRatio(double ratio) {
    if (o_.denoise_ratio < 0 && ratio != ratio_) SetRatio(ratio);
  }

  Status Run() {
    double loss_sum = 0;
    int loss_n = 0;
    const int64_t first_step = step_;
    if (o_.minutes > 0) VEIL_RETURN_IF_ERROR(Eval());
    const auto start = Clock::now();  // the budget is for training: a run with minutes > 0 takes a step at least
    auto last_ckpt = Clock::now();
    for (;;) {
      const bool out_of_time = Seconds(start) >= o_.minutes * 60.0 && (o_.minutes <= 0 || step_ > first_step);
      const bool asked = o_.stop && o_.stop();
      if (out_of_time || asked) break;
      const auto t0 = Clock::now();
      VEIL_ASSIGN_OR_RETURN(double loss, Step());
      loss_sum += loss;
      ++loss_n;
      ++step_;
      train_seconds_ += Seconds(t0);
      if (step_ % 20 == 0) {
        std::printf("step %lld  loss %.4f  %.2fs/step\n", static_cast<long long>(step_), loss_sum / loss_n, Seconds(t0));
        std::fflush(stdout);
        log_ << step_ << '\t' << std::setprecision(5) << loss_sum / loss_n << "\t\t\t\t\t\n";
        log_.flush();
        loss_sum = 0;
        loss_n = 0;
      }
      if (o_.eval_every > 0 && step_ % o_.eval_every == 0) VEIL_RETURN_IF_ERROR(Eval());
      if (Seconds(last_ckpt) >= o_.checkpoint_minutes * 60.0) {
        VEIL_RETURN_IF_ERROR(Save());
        last_ckpt = Clock::now();
      }
    }
    VEIL_RETURN_IF_ERROR(Eval());
    if (step_ > first_step) VEIL_RETURN_IF_ERROR(Save());  // an export-only run leaves the checkpoint alone
    if (o_.export_path.empty()) return Status::Ok();
    std::map<std::string, std::string> info = {
        {"trained_for", o_.models_dir},
        {"flow_sha256", flow_sha256_},
        {"steps", std::to_string(step_)},
        {"train_seconds", std::to_string(static_cast<int64_t>(train_seconds_))},
        {"data", "UTKFace (non-commercial research terms), utkface-v1 train split"},
        {"start", "face-api 1.7.15 face_recognition_model (dlib ResNet-34)"}};
    VEIL_RETURN_IF_ERROR(engine::identity::SavePseudonymReader(*P_, o_.export_path, generator_sha256_, ratio_, info, true));
    std::printf("exported %s (for generator %s)\n", o_.export_path.c_str(), generator_sha256_.substr(0, 16).c_str());
    return Status::Ok();
  }

 private:
  // A batch of crops (BGR [-1, 1]) and their codes.
  void Batch(const std::vector<size_t>& idx, torch::Tensor* x, torch::Tensor* z) const {
    const auto n = static_cast<int64_t>(idx.size());
    torch::Tensor u8 = torch::empty({n, kCrop, kCrop, 3}, torch::kUInt8);
    *z = torch::empty({n, 128});
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(u8[i].data_ptr<uint8_t>(), data_.crop_data(idx[i]), kCrop * kCrop * 3);
      std::memcpy((*z)[i].data_ptr<float>(), data_.descriptor(idx[i]), sizeof(float) * 128);
    }
    *x = engine::identity::PixelsToUnit(u8);
  }

  torch::Tensor Denoise(const torch::Tensor& r) const { return mean_ + torch::matmul(r - mean_, denoise_); }

  StatusOr<double> Step() {
    std::vector<size_t> idx;
    for (int i = 0; i < o_.batch; ++i) idx.push_back(train_[rng_() % train_.size()]);
    torch::Tensor x, z;
    Batch(idx, &x, &z);
    std::vector<keys::SecretBytes> ks;
    for (int i = 0; i < o_.batch; ++i) {
      uint8_t b[32];
      for (auto& v : b) v = static_cast<uint8_t>(rng_());
      ks.push_back(keys::SecretBytes::Copy(b, sizeof(b)));
    }
    std::vector<const keys::SecretBytes*> kp;
    for (const auto& k : ks) kp.push_back(&k);
    VEIL_ASSIGN_OR_RETURN(engine::identity::FlowKeys fk, engine::identity::MakeFlowKeys(F_->options(), kp));
    torch::Tensor y, za;
    {
      torch::NoGradGuard no_grad;
      za = F_->forward(z, fk);
      y = G_->forward(E_->forward(x), z + gain_ * (za - z));
      // The pipeline colour-matches the rendered face to the photo before pasting it back: a
      // random per-channel contrast (+-8 %) and shift (+-0.06) on half the batch stands in for it.
      const auto n = y.size(0);
      const torch::Tensor on = (torch::rand({n, 1, 1, 1}) < 0.5).to(torch::kFloat32);
      const torch::Tensor gain = 1.0 + on * (torch::rand({n, 3, 1, 1}) * 0.16 - 0.08);
      const torch::Tensor shift = on * (torch::rand({n, 3, 1, 1}) * 0.12 - 0.06);
      const torch::Tensor mean = y.mean({2, 3}, true);
      y = Quantize((y - mean) * gain + mean + shift);
    }
    P_->train();
    opt_->zero_grad();
    const torch::Tensor r = P_->forward(engine::nets::RecognizerInputFromBgr(y));
    torch::Tensor loss = (r - za).pow(2).sum(1).mean();
    if (o_.w_inv > 0) loss = loss + o_.w_inv * (F_->inverse(Denoise(r), fk) - z).pow(2).sum(1).mean();
    loss.backward();
    opt_->step();
    fk.Wipe();
    return loss.item<double>();
  }

  // Held-out: each face anonymized under its own fixed key (keyed restore varies with the key as much
  // as with the face); distances of P's read, its inverse and the re-rendered restore (steered from
  // the dlib read-back, as the pipeline renders) to the truth; dlib's read too.
  Status Eval() {
    torch::NoGradGuard no_grad;
    P_->eval();
    std::vector<keys::SecretBytes> eval_keys;
    for (size_t i = 0; i < holdout_.size(); ++i) {
      const std::string digest = keys::Blake2b256("veil-reader-eval-key:" + std::to_string(i));
      eval_keys.push_back(keys::SecretBytes::Copy(digest.data(), digest.size()));
    }
    double read = 0, read_dlib = 0, inv = 0, rest = 0, floor = 0;
    int inv_below = 0, rest_below = 0, n = 0;
    for (size_t s = 0; s < holdout_.size(); s += 8) {
      std::vector<size_t> idx(holdout_.begin() + s, holdout_.begin() + std::min(holdout_.size(), s + 8));
      torch::Tensor x, z;
      Batch(idx, &x, &z);
      std::vector<const keys::SecretBytes*> kp;
      for (size_t i = 0; i < idx.size(); ++i) kp.push_back(&eval_keys[s + i]);
      VEIL_ASSIGN_OR_RETURN(engine::identity::FlowKeys fk, engine::identity::MakeFlowKeys(F_->options(), kp));
      const torch::Tensor za = F_->forward(z, fk);
      const torch::Tensor y = Quantize(G_->forward(E_->forward(x), z + gain_ * (za - z)));
      const torch::Tensor r = P_->forward(engine::nets::RecognizerInputFromBgr(y));
      const torch::Tensor rd = dlib_->forward(engine::nets::RecognizerInputFromBgr(y));
      const torch::Tensor zi = F_->inverse(Denoise(r), fk);
      const torch::Tensor zf = F_->inverse(Denoise(za), fk);  // a perfect read, denoised
      const torch::Tensor back = Quantize(G_->forward(E_->forward(y), rd + gain_ * (zi - rd)));
      const torch::Tensor dr = dlib_->forward(engine::nets::RecognizerInputFromBgr(back));
      fk.Wipe();
      for (int64_t i = 0; i < z.size(0); ++i) {
        const double di = (zi[i] - z[i]).norm().item<double>(), dd = (dr[i] - z[i]).norm().item<double>();
        read += (r[i] - za[i]).norm().item<double>();
        read_dlib += (rd[i] - za[i]).norm().item<double>();
        floor += (zf[i] - z[i]).norm().item<double>();
        inv += di;
        rest += dd;
        inv_below += di < 0.6;
        rest_below += dd < 0.6;
        ++n;
      }
    }
    std::printf("eval step %lld (%d held-out, denoise %.3g): read error %.3f (dlib %.3f) | inverse %.3f, %.1f %% < 0.6 (a perfect "
                "read: %.3f) | keyed restore %.3f, %.1f %% < 0.6\n",
                static_cast<long long>(step_), n, ratio_, read / n, read_dlib / n, inv / n, 100.0 * inv_below / n, floor / n,
                rest / n, 100.0 * rest_below / n);
    std::fflush(stdout);
    log_ << step_ << "\t\t" << std::setprecision(5) << read / n << '\t' << inv / n << '\t' << double(inv_below) / n
         << '\t' << rest / n << '\t' << double(rest_below) / n << '\n';
    log_.flush();
    return Status::Ok();
  }

  Status OpenLog() {
    return OpenTrainingLog(
        (fs::path(o_.out_dir) / "log.tsv").string(),
        "step\ttrain_loss\teval_read_error\teval_inverse\teval_inverse_below_0.6\teval_restore\teval_restore_below_0.6",
        log_);
  }

  Status Save() {
    try {
      torch::serialize::OutputArchive ar;
      WriteModule(ar, "P", *P_);
      WriteOptimizer(ar, "opt", *opt_);
      ar.write("step", torch::tensor(step_), true);
      ar.write("train_seconds", torch::tensor(train_seconds_, torch::kFloat64), true);
      ar.write("denoise_ratio", torch::tensor(ratio_, torch::kFloat64), true);
      ar.write("generator_sha256", torch::tensor(std::vector<int64_t>(generator_sha256_.begin(), generator_sha256_.end())), true);
      const std::string path = (fs::path(o_.out_dir) / "reader.pt").string();
      VEIL_RETURN_IF_ERROR(SaveArchiveDurably(ar, path, "reader checkpoint"));
      std::printf("checkpoint at step %lld -> %s\n", static_cast<long long>(step_), path.c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      return IoError(std::string("writing the reader checkpoint failed: ") + e.what());
    }
    return Status::Ok();
  }

  Status Load(const std::string& path) {
    try {
      torch::serialize::InputArchive ar;
      VEIL_RETURN_IF_ERROR(LoadArchive(path, torch::kCPU, ar, "reader checkpoint"));
      ReadModule(ar, "P", *P_);
      ReadOptimizer(ar, "opt", *opt_);
      torch::Tensor step, secs, ratio, gen;
      ar.read("step", step, true);
      ar.read("train_seconds", secs, true);
      step_ = step.item<int64_t>();
      train_seconds_ = secs.item<double>();
      // Checkpoints written before these fields carry neither (the generator was then the shipped one).
      if (ar.try_read("generator_sha256", gen, true)) {
        std::string sha;
        for (int64_t i = 0; i < gen.numel(); ++i) sha.push_back(static_cast<char>(gen[i].item<int64_t>()));
        if (sha != generator_sha256_)
          return InvalidArgumentError("the reader checkpoint " + path + " was trained for another generator than " +
                                      o_.models_dir + "'s");
      }
      if (ar.try_read("denoise_ratio", ratio, true)) AdoptRatio(ratio.item<double>());
    } catch (const std::exception& e) {
      return DataLossError("cannot read the reader checkpoint " + path + ": " + e.what());
    }
    std::printf("veil-train-reader: resumed from %s at step %lld\n", path.c_str(), static_cast<long long>(step_));
    return Status::Ok();
  }

  // A reader model file (veil-reader-v1.veilmodel): fp16 weights, its denoise ratio and its step
  // count; Adam restarts. Checked as the engine checks it (PseudonymReader::Load).
  Status LoadModel(const std::string& path) {
    VEIL_ASSIGN_OR_RETURN(auto reader, engine::PseudonymReader::Load(path, ""));
    if (reader->generator_sha256() != generator_sha256_)
      return InvalidArgumentError(path + " was trained for another generator than " + o_.models_dir + "'s");
    AdoptRatio(reader->DenoiseRatio());
    VEIL_ASSIGN_OR_RETURN(auto m, engine::LoadModelFile(path));
    VEIL_RETURN_IF_ERROR(engine::LoadModuleTensors(*P_, m).WithContext(path));
    step_ = 0;
    if (auto it = m.info.find("steps"); it != m.info.end()) {
      VEIL_ASSIGN_OR_RETURN(double steps, ParseNumber(it->second, path + " info steps", [](double v, const std::string& what) {
        return CheckInRange(v, 0.0, 1e12, what);
      }));
      step_ = static_cast<int64_t>(steps);
    }
    std::printf("veil-train-reader: started from %s at step %lld (optimizer restarted)\n", path.c_str(),
                static_cast<long long>(step_));
    return Status::Ok();
  }

  ReaderTrainOptions o_;
  UtkDataset data_;
  std::mt19937_64 rng_;
  engine::identity::AttributeEncoder E_{nullptr};
  engine::identity::Generator G_{nullptr};
  engine::identity::Flow F_{nullptr};
  engine::nets::FaceRecognitionNet P_, dlib_;
  std::unique_ptr<torch::optim::Adam> opt_;
  torch::Tensor denoise_, mean_;
  float gain_ = 1;
  double ratio_ = 0;
  std::string generator_sha256_, flow_sha256_;
  std::vector<size_t> train_, holdout_;
  int64_t step_ = 0;
  double train_seconds_ = 0;
  std::ofstream log_;
};

}  // namespace

Status RunReaderTraining(const ReaderTrainOptions& options) {
  VEIL_ASSIGN_OR_RETURN(UtkDataset data, UtkDataset::Open(options.data_dir));
  try {
    Trainer t(options, std::move(data));
    VEIL_RETURN_IF_ERROR(t.Init());
    return t.Run();
  } catch (const std::exception& e) {
    return InternalError(std::string("reader training failed: ") + e.what());
  }
}

}  // namespace veil::train::reader
