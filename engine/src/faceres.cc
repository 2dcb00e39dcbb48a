// The second (measuring-only) recognizer: loads human's faceres graph model and runs its
// MobileNet v1 descriptor.
#include "veil/engine/faceres.h"

#include <sodium.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "default_dirs.h"
#include "nets/faceres_net.h"
#include "veil/engine/runtime.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

namespace fs = std::filesystem;

// @vladmandic/human 3.3.6, package/models/.
constexpr const char* kJsonSha256 = "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df";
constexpr const char* kBinSha256 = "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b";
constexpr size_t kMaxBytes = 32u << 20;

class FaceResImpl final : public FaceResRecognizer {
 public:
  Status Load(const FaceResParams& p) {
    const fs::path dir = p.models_dir.empty() ? fs::path(DefaultHumanModelsDir()) : fs::path(p.models_dir);
    const fs::path json_path = dir / "faceres.json", bin_path = dir / "faceres.bin";
    if (!fs::exists(json_path)) {
      return NotFoundError("FaceRes model " + json_path.string() + " not found; run tools/fetch_human.sh or set VEIL_HUMAN_DIR");
    }
    VEIL_ASSIGN_OR_RETURN(std::string json, keys::ReadFile(json_path.string(), kMaxBytes));
    VEIL_ASSIGN_OR_RETURN(std::string bin, keys::ReadFile(bin_path.string(), kMaxBytes));
    if (p.verify_checksums) {
      if (sodium_init() < 0) return InternalError("libsodium failed to initialize");
      if (keys::ToHex(keys::Sha256(json)) != kJsonSha256 || keys::ToHex(keys::Sha256(bin)) != kBinSha256) {
        return DataLossError("the FaceRes model files in " + dir.string() + " are not human 3.3.6's (SHA-256 mismatch)");
      }
    }
    nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weightsManifest") || j.value("format", "") != "graph-model") {
      return DataLossError(json_path.string() + " is not a TF.js graph model");
    }
    VEIL_ASSIGN_OR_RETURN(TfjsWeights w, TfjsWeights::Parse(j["weightsManifest"].dump(), {{"faceres.bin", bin}}));
    try {
      VEIL_RETURN_IF_ERROR(net_->LoadFrom(w));
    } catch (const std::exception& e) {
      return InternalError(std::string("loading FaceRes failed: ") + e.what());
    }
    net_->eval();
    return Status::Ok();
  }

  StatusOr<std::vector<FaceResDescriptor>> Describe(const std::vector<cv::Mat>& faces) override {
    std::vector<FaceResDescriptor> out;
    if (faces.empty()) return out;
    const int s = nets::FaceResNetImpl::kInputSize;
    try {
      c10::InferenceMode guard;
      torch::Tensor x = torch::empty({static_cast<int64_t>(faces.size()), s, s, 3}, torch::kFloat32);
      for (size_t i = 0; i < faces.size(); ++i) {
        if (faces[i].empty() || faces[i].type() != CV_8UC3) return InvalidArgumentError("FaceRes needs 8-bit BGR faces");
        cv::Mat rgb, resized, f;
        cv::cvtColor(faces[i], rgb, cv::COLOR_BGR2RGB);
        cv::resize(rgb, resized, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
        resized.convertTo(f, CV_32FC3);
        std::memcpy(x[static_cast<int64_t>(i)].data_ptr<float>(), f.ptr<float>(), sizeof(float) * s * s * 3);
      }
      torch::Tensor d = net_->forward(x.permute({0, 3, 1, 2}).contiguous());
      d = d / d.norm(2, 1, true).clamp_min(1e-12);
      for (int64_t i = 0; i < d.size(0); ++i) {
        const float* p = d[i].data_ptr<float>();
        out.emplace_back(p, p + nets::FaceResNetImpl::kDescriptorSize);
      }
    } catch (const std::exception& e) {
      return InternalError(std::string("FaceRes failed: ") + e.what());
    }
    return out;
  }

 private:
  nets::FaceResNet net_;
};

}  // namespace

std::string DefaultHumanModelsDir() { return internal::DefaultDataDir("VEIL_HUMAN_DIR", VEIL_HUMAN_MODELS_DIR, "human"); }

StatusOr<std::unique_ptr<FaceResRecognizer>> FaceResRecognizer::Create(const FaceResParams& params) {
  InitRuntimeOnce();
  auto r = std::make_unique<FaceResImpl>();
  VEIL_RETURN_IF_ERROR(r->Load(params));
  return std::unique_ptr<FaceResRecognizer>(std::move(r));
}

float FaceResDistance(const FaceResDescriptor& a, const FaceResDescriptor& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
  return static_cast<float>(std::sqrt(s));
}

}  // namespace veil::engine
