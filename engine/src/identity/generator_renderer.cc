// FaceRenderer: loads E and G from Veil model files and renders G(E(crop), identity).
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <list>

#include "default_dirs.h"
#include "identity/renderer_files.h"
#include "nets/module_io.h"
#include "veil/engine/model_file.h"
#include "veil/engine/runtime.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace identity {

Status SaveRendererModels(AttributeEncoderImpl& encoder, GeneratorImpl& generator, const std::string& encoder_path,
                          const std::string& generator_path, const FaceRendererSaveInfo& s) {
  const int64_t macs = MeasureMacsPerFace(encoder, generator);
  auto make = [&](const torch::nn::Module& m, const std::string& id, const std::string& kind,
                  std::map<std::string, std::string> options) {
    ModelFileContents f;
    f.model_id = id;
    f.kind = kind;
    f.options = std::move(options);
    f.info = s.info;
    f.info["flops_per_face_e_plus_g"] = std::to_string(2 * macs);
    f.tensors = ModelTensors(m, s.fp16);
    f.created_unix = static_cast<int64_t>(std::time(nullptr));
    return f;
  };
  VEIL_RETURN_IF_ERROR(SaveModelFile(encoder_path, make(encoder, s.encoder_id, kEncoderKind, encoder.options.ToMap()),
                                     s.overwrite));
  // The generator names the encoder it was trained with: a pair mixed from two exports is refused.
  VEIL_ASSIGN_OR_RETURN(std::string encoder_sha256, keys::Sha256File(encoder_path));
  ModelFileContents g = make(generator, s.generator_id, kGeneratorKind, generator.options.ToMap());
  g.info[kEncoderShaInfo] = keys::ToHex(encoder_sha256);
  return SaveModelFile(generator_path, g, s.overwrite);
}

torch::Tensor CropsToPixels(const std::vector<cv::Mat>& crops, size_t first, size_t count, int side) {
  torch::Tensor x = torch::empty({static_cast<int64_t>(count), side, side, 3}, torch::kUInt8);
  for (size_t i = 0; i < count; ++i) {
    const cv::Mat& c = crops[first + i];
    const cv::Mat dense = c.isContinuous() ? c : c.clone();
    std::memcpy(x[static_cast<int64_t>(i)].data_ptr<uint8_t>(), dense.data, static_cast<size_t>(side) * side * 3);
  }
  return x;
}

}  // namespace identity

namespace {

std::string ModelsDir() { return internal::DefaultDataDir("VEIL_MODELS_DIR", VEIL_MODELS_DIR, "models"); }

class FaceRendererImpl final : public FaceRenderer {
 public:
  explicit FaceRendererImpl(int max_batch) : max_batch_(std::max(1, max_batch)) {
    encoder_->eval();
    generator_->eval();
  }

  Status Load(const std::string& encoder_path, const std::string& generator_path) {
    VEIL_ASSIGN_OR_RETURN(ModelFileContents e, LoadModelFile(encoder_path));
    VEIL_ASSIGN_OR_RETURN(identity::AttributeEncoderOptions eo, identity::AttributeEncoderOptions::FromMap(e.options));
    encoder_ = identity::AttributeEncoder(eo);
    encoder_->eval();
    VEIL_RETURN_IF_ERROR(CheckModelOptions(e, identity::kEncoderKind, encoder_->options.ToMap(), {"pool"})
                             .WithContext("attribute encoder " + encoder_path));
    VEIL_RETURN_IF_ERROR(CheckFiniteTensors(e, "attribute encoder " + encoder_path));
    VEIL_RETURN_IF_ERROR(LoadModuleTensors(*encoder_, e).WithContext("attribute encoder " + encoder_path));
    VEIL_ASSIGN_OR_RETURN(ModelFileContents g, LoadModelFile(generator_path));
    VEIL_ASSIGN_OR_RETURN(identity::GeneratorOptions go, identity::GeneratorOptions::FromMap(g.options));
    generator_ = identity::Generator(go);
    folded_.clear();
    generator_->eval();
    VEIL_RETURN_IF_ERROR(CheckModelOptions(g, identity::kGeneratorKind, generator_->options.ToMap(),
                                           {"identity_gain", "readback_noise_ratio"})
                             .WithContext("generator " + generator_path));
    VEIL_RETURN_IF_ERROR(CheckFiniteTensors(g, "generator " + generator_path));
    VEIL_RETURN_IF_ERROR(LoadModuleTensors(*generator_, g).WithContext("generator " + generator_path));
    if (auto it = g.info.find(identity::kEncoderShaInfo); it != g.info.end() && it->second != e.sha256_hex) {
      return InvalidArgumentError("generator " + generator_path + " was trained with another encoder than " + encoder_path +
                                  " (its SHA-256 " + it->second.substr(0, 16) + "..., not " + e.sha256_hex.substr(0, 16) + "...)");
    }
    Measure();
    models_ = {{e.model_id, "encoder", e.sha256_hex}, {g.model_id, "generator", g.sha256_hex}};
    return Status::Ok();
  }

  void Measure() { flops_ = 2 * identity::MeasureMacsPerFace(*encoder_, *generator_); }

  StatusOr<std::vector<cv::Mat>> Render(const std::vector<cv::Mat>& crops,
                                        const std::vector<Descriptor>& identities) override {
    if (crops.size() != identities.size()) {
      return InvalidArgumentError("FaceRenderer::Render: " + std::to_string(crops.size()) + " crops but " +
                                  std::to_string(identities.size()) + " identities");
    }
    for (const cv::Mat& c : crops) {
      if (c.rows != kCropSize || c.cols != kCropSize || c.type() != CV_8UC3) {
        return InvalidArgumentError("FaceRenderer::Render: crops must be 128x128 8-bit BGR (Aligner output_size 128)");
      }
    }
    std::vector<cv::Mat> out;
    out.reserve(crops.size());
    try {
      c10::InferenceMode guard;
      const size_t batch = static_cast<size_t>(max_batch_);
      for (size_t start = 0; start < crops.size(); start += batch) {
        const int64_t n = static_cast<int64_t>(std::min(crops.size(), start + batch) - start);
        const torch::Tensor attr = encoder_->forward(identity::PixelsToUnit(
            identity::CropsToPixels(crops, start, static_cast<size_t>(n), kCropSize), at::MemoryFormat::ChannelsLast));
        std::vector<torch::Tensor> faces;
        for (int64_t i = 0; i < n; ++i) {
          faces.push_back(generator_->Infer(attr.narrow(0, i, 1), FoldedFor(identities[start + static_cast<size_t>(i)])));
        }
        const torch::Tensor y = identity::UnitToPixels(torch::cat(faces));
        for (int64_t i = 0; i < n; ++i) {
          cv::Mat m(kCropSize, kCropSize, CV_8UC3);
          std::memcpy(m.data, y[i].data_ptr<uint8_t>(), kCropSize * kCropSize * 3);
          out.push_back(m);
        }
      }
    } catch (const std::exception& e) {
      return InternalError(std::string("face renderer failed: ") + e.what());
    }
    return out;
  }

  Status Save(const std::string& encoder_path, const std::string& generator_path,
              const FaceRendererSaveInfo& save_info) const override {
    try {
      return identity::SaveRendererModels(*encoder_, *generator_, encoder_path, generator_path, save_info);
    } catch (const std::exception& e) {
      return InternalError(std::string("saving the face renderer failed: ") + e.what());
    }
  }

  // G's weights folded for `identity`: computed once and kept for the last kFoldedCached
  // identities (a stream renders the same pseudonym frame after frame; ~4 MB each).
  const identity::GeneratorImpl::Folded& FoldedFor(const Descriptor& identity) {
    for (auto it = folded_.begin(); it != folded_.end(); ++it) {
      if (it->first == identity) {
        folded_.splice(folded_.begin(), folded_, it);
        return folded_.front().second;
      }
    }
    torch::Tensor z = torch::from_blob(const_cast<float*>(identity.data()), {1, 128}, torch::kFloat32).clone();
    folded_.emplace_front(identity, generator_->Fold(z));
    if (folded_.size() > kFoldedCached) folded_.pop_back();
    return folded_.front().second;
  }

  int64_t FlopsPerFace() const override { return flops_; }
  float IdentityGain() const override { return static_cast<float>(generator_->options.identity_gain()); }
  float ReadBackNoiseRatio() const override { return static_cast<float>(generator_->options.readback_noise_ratio()); }
  std::vector<ModelRef> models() const override { return models_; }

 private:
  int max_batch_;
  mutable identity::AttributeEncoder encoder_;
  mutable identity::Generator generator_;
  static constexpr size_t kFoldedCached = 4;
  std::list<std::pair<Descriptor, identity::GeneratorImpl::Folded>> folded_;  // most recent first
  int64_t flops_ = 0;
  std::vector<ModelRef> models_;
};

}  // namespace

std::string DefaultEncoderModelPath() { return ModelsDir() + "/veil-encoder-v1.veilmodel"; }
std::string DefaultGeneratorModelPath() { return ModelsDir() + "/veil-generator-v1.veilmodel"; }

StatusOr<std::unique_ptr<FaceRenderer>> FaceRenderer::Create(const FaceRendererParams& params) {
  InitRuntimeOnce();
  try {
    auto r = std::make_unique<FaceRendererImpl>(params.max_batch);
    VEIL_RETURN_IF_ERROR(r->Load(params.encoder_path.empty() ? DefaultEncoderModelPath() : params.encoder_path,
                                 params.generator_path.empty() ? DefaultGeneratorModelPath() : params.generator_path));
    return std::unique_ptr<FaceRenderer>(std::move(r));
  } catch (const std::exception& e) {
    return InternalError(std::string("loading the face renderer failed: ") + e.what());
  }
}

StatusOr<std::unique_ptr<FaceRenderer>> FaceRenderer::CreateUntrained(uint64_t seed) {
  InitRuntimeOnce();
  try {
    torch::manual_seed(seed);
    auto r = std::make_unique<FaceRendererImpl>(8);
    r->Measure();
    return std::unique_ptr<FaceRenderer>(std::move(r));
  } catch (const std::exception& e) {
    return InternalError(std::string("creating the face renderer failed: ") + e.what());
  }
}

}  // namespace veil::engine
