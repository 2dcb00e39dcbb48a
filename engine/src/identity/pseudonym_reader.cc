// PseudonymReader: the fine-tuned dlib ResNet that reads a rendered face's identity code back.
#include "veil/engine/pseudonym_reader.h"

#include <cstring>
#include <ctime>
#include <filesystem>

#include "identity/renderer_files.h"
#include "identity/pseudonym_reader_net.h"
#include "nets/module_io.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/model_file.h"
#include "veil/engine/runtime.h"
#include "veil/engine/tfjs_weights.h"

namespace veil::engine {
namespace identity {

namespace {
constexpr const char* kGeneratorOption = "generator_sha256";
constexpr const char* kInputOption = "input";
constexpr const char* kInputValue = "bgr128-bilinear150";
constexpr const char* kRatioOption = "denoise_ratio";

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

Status SavePseudonymReader(const nets::FaceRecognitionNetImpl& net, const std::string& path,
                           const std::string& generator_sha256, double denoise_ratio,
                           const std::map<std::string, std::string>& info, bool overwrite) {
  if (!IsHex64(generator_sha256)) return InvalidArgumentError("the reader's generator SHA-256 must be 64 hex digits");
  VEIL_RETURN_IF_ERROR(CheckReadBackNoiseRatio(denoise_ratio, "the reader's denoise ratio"));
  char ratio[32];
  std::snprintf(ratio, sizeof(ratio), "%.4g", denoise_ratio);
  ModelFileContents f;
  f.model_id = "veil-reader-v1";
  f.kind = kPseudonymReaderKind;
  f.options = {{kGeneratorOption, generator_sha256}, {kInputOption, kInputValue}, {kRatioOption, ratio}};
  f.info = info;
  f.tensors = ModelTensors(net, /*fp16=*/true);
  f.created_unix = static_cast<int64_t>(std::time(nullptr));
  return SaveModelFile(path, f, overwrite);
}

}  // namespace identity

namespace {

class PseudonymReaderImpl final : public PseudonymReader {
 public:
  Status Init(const ModelFileContents& model, const std::string& face_api_dir) {
    if (model.kind != kPseudonymReaderKind)
      return InvalidArgumentError("model is a '" + model.kind + "', expected a '" + kPseudonymReaderKind + "'");
    auto gen = model.options.find(identity::kGeneratorOption);
    auto input = model.options.find(identity::kInputOption);
    auto ratio = model.options.find(identity::kRatioOption);
    if (gen == model.options.end() || !identity::IsHex64(gen->second))
      return InvalidArgumentError("pseudonym reader: the file names no generator (option generator_sha256)");
    if (input == model.options.end() || input->second != identity::kInputValue || ratio == model.options.end() ||
        model.options.size() != 3)
      return InvalidArgumentError("pseudonym reader: options this build does not know");
    VEIL_ASSIGN_OR_RETURN(double r, ParseNumber(ratio->second, "pseudonym reader option denoise_ratio", CheckReadBackNoiseRatio));
    ratio_ = static_cast<float>(r);
    // face-api's recognizer gives the layout (names, shapes); the file's tensors replace its values.
    VEIL_ASSIGN_OR_RETURN(TfjsWeights w, TfjsWeights::Load(ResolveModelsDir(face_api_dir), "face_recognition_model", true));
    VEIL_RETURN_IF_ERROR(net_->LoadFrom(w));
    VEIL_RETURN_IF_ERROR(CheckFiniteTensors(model, "pseudonym reader"));
    VEIL_RETURN_IF_ERROR(LoadModuleTensors(*net_, model));
    net_->eval();
    model_id_ = model.model_id;
    sha_ = model.sha256_hex;
    generator_sha_ = gen->second;
    return Status::Ok();
  }

  StatusOr<std::vector<Descriptor>> Read(const std::vector<cv::Mat>& crops) override {
    constexpr int kCrop = FaceRenderer::kCropSize;
    for (const cv::Mat& c : crops)
      if (c.rows != kCrop || c.cols != kCrop || c.type() != CV_8UC3)
        return InvalidArgumentError("PseudonymReader::Read: crops must be 128x128 8-bit BGR (Aligner output_size 128)");
    std::vector<Descriptor> out;
    if (crops.empty()) return out;
    try {
      c10::InferenceMode guard;
      const auto n = static_cast<int64_t>(crops.size());
      const torch::Tensor x = identity::CropsToPixels(crops, 0, crops.size(), kCrop);
      const torch::Tensor y = net_->forward(nets::RecognizerInputFromBgr(identity::PixelsToUnit(x))).contiguous();
      out.resize(crops.size());
      for (int64_t i = 0; i < n; ++i) std::memcpy(out[i].data(), y[i].data_ptr<float>(), sizeof(float) * 128);
    } catch (const std::exception& e) {
      return InternalError(std::string("pseudonym reader failed: ") + e.what());
    }
    return out;
  }

  const std::string& model_id() const override { return model_id_; }
  const std::string& model_sha256() const override { return sha_; }
  const std::string& generator_sha256() const override { return generator_sha_; }
  float DenoiseRatio() const override { return ratio_; }

 private:
  float ratio_ = 0;
  nets::FaceRecognitionNet net_;
  std::string model_id_, sha_, generator_sha_;
};

}  // namespace

StatusOr<std::unique_ptr<PseudonymReader>> PseudonymReader::Load(const std::string& path, const std::string& face_api_dir) {
  VEIL_ASSIGN_OR_RETURN(ModelFileContents model, LoadModelFile(path));
  InitRuntimeOnce();
  try {
    auto r = std::make_unique<PseudonymReaderImpl>();
    VEIL_RETURN_IF_ERROR(r->Init(model, face_api_dir).WithContext("pseudonym reader " + path));
    return std::unique_ptr<PseudonymReader>(std::move(r));
  } catch (const std::exception& e) {
    return InternalError(std::string("pseudonym reader: cannot build the model: ") + e.what());
  }
}

StatusOr<std::unique_ptr<PseudonymReader>> PseudonymReader::LoadIfFor(const std::string& path,
                                                                      const std::string& generator_sha256,
                                                                      const std::string& face_api_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::unique_ptr<PseudonymReader>();
  VEIL_ASSIGN_OR_RETURN(std::unique_ptr<PseudonymReader> r, Load(path, face_api_dir));
  if (r->generator_sha256() != generator_sha256) return std::unique_ptr<PseudonymReader>();
  return r;
}

std::string DefaultPseudonymReaderPath(const std::string& encoder_path) {
  const std::string enc = encoder_path.empty() ? DefaultEncoderModelPath() : encoder_path;
  return (std::filesystem::path(enc).parent_path() / kPseudonymReaderFile).string();
}

}  // namespace veil::engine
