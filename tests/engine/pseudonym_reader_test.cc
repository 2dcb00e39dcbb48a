// The pseudonym reader (keyed restore's read-back): its model file, its input convention, and the
// pipeline's rule that a reader serves only the generator it was trained for. The reader here is
// face-api's recognizer written as a reader file (no fine-tuning): these tests check the machinery;
// the trained reader's numbers are in models/keyed-restore-limits.md (point 2).
// (DOCTEST_CHECK: LibTorch, included for the reader file writer, defines its own CHECK.)
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include "identity/pseudonym_reader_net.h"
#include "test_support.h"
#include "veil/engine/aligner.h"
#include "veil/engine/face_renderer.h"
#include "veil/engine/identity_flow.h"
#include "veil/engine/model_file.h"
#include "veil/engine/pipeline.h"
#include "veil/engine/pseudonym_reader.h"
#include "veil/engine/recognizer.h"
#include "veil/engine/tfjs_weights.h"
#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::engine {
namespace {

namespace fs = std::filesystem;

// A throw-away folder, removed with the object (also when a REQUIRE ends the test early).
struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("veil-reader-test-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string FileSha256(const std::string& path) {
  auto bytes = keys::ReadFile(path, 64u << 20);
  REQUIRE(bytes.ok());
  return keys::ToHex(keys::Sha256(*bytes));
}

// face-api's recognizer written as a reader file for the generator with `generator_sha256`.
void WriteUntunedReader(const std::string& path, const std::string& generator_sha256) {
  auto w = TfjsWeights::Load(testing::ModelsDir(), "face_recognition_model", true);
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  nets::FaceRecognitionNet net;
  REQUIRE(net->LoadFrom(*w).ok());
  Status st = identity::SavePseudonymReader(*net, path, generator_sha256, 0.25, {{"purpose", "test"}}, true);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
}

// The aligned 128 crops of the faces of a demo photo.
std::vector<cv::Mat> DemoCrops(const std::string& photo) {
  const cv::Mat& image = testing::DemoImage(photo);
  auto faces = testing::SsdDetector().Detect(image);
  REQUIRE(faces.ok());
  Aligner aligner(AlignerParams{FaceRenderer::kCropSize, 0.25f, 0.1f});
  std::vector<cv::Mat> crops;
  for (const auto& f : *faces) {
    auto a = aligner.Align(image, f);
    REQUIRE(a.ok());
    crops.push_back(a->image);
  }
  REQUIRE(!crops.empty());
  return crops;
}

}  // namespace

TEST_CASE("the recognizer's input from a BGR crop in [-1, 1] is RGB in [0, 255] minus the mean, / 255, at 150") {
  torch::manual_seed(11);
  const torch::Tensor x150 = torch::rand({2, 3, 150, 150}) * 2 - 1;
  const auto& m = nets::FaceRecognitionNetImpl::kMeanRgb;
  const torch::Tensor mean = torch::tensor({m[0], m[1], m[2]}).view({1, 3, 1, 1});
  const torch::Tensor want = ((x150.flip({1}) + 1) * 127.5 - mean) / 255.0;
  DOCTEST_CHECK(torch::allclose(nets::RecognizerInputFromBgr(x150), want, 1e-6, 1e-6));  // no resampling at 150
  // A 128 crop is resampled to 150 first: a flat colour stays that colour.
  const torch::Tensor flat = torch::tensor({-0.5f, 0.0f, 0.5f}).view({1, 3, 1, 1}).expand({1, 3, 128, 128}).contiguous();
  const torch::Tensor got = nets::RecognizerInputFromBgr(flat);
  DOCTEST_CHECK(got.sizes() == torch::IntArrayRef({1, 3, 150, 150}));
  const torch::Tensor flat_want = ((torch::tensor({0.5f, 0.0f, -0.5f}).view({1, 3, 1, 1}) + 1) * 127.5 - mean) / 255.0;
  DOCTEST_CHECK(torch::allclose(got, flat_want.expand({1, 3, 150, 150}), 1e-6, 1e-6));
}

TEST_CASE("an untuned pseudonym reader reads what the recognizer reads, the same bits every time") {
  TempDir t;
  const std::string path = (t.dir / kPseudonymReaderFile).string();
  const std::string gen_sha = FileSha256(DefaultGeneratorModelPath());
  WriteUntunedReader(path, gen_sha);
  auto reader = PseudonymReader::Load(path, testing::ModelsDir().string());
  REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
  DOCTEST_CHECK((*reader)->generator_sha256() == gen_sha);
  DOCTEST_CHECK((*reader)->model_id() == "veil-reader-v1");
  DOCTEST_CHECK((*reader)->DenoiseRatio() == doctest::Approx(0.25));
  DOCTEST_CHECK((*reader)->model_sha256() == FileSha256(path));
  const auto crops = DemoCrops("sample1.jpg");
  auto a = (*reader)->Read(crops);
  auto b = (*reader)->Read(crops);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a->size() == crops.size());
  for (size_t i = 0; i < crops.size(); ++i) DOCTEST_CHECK(std::memcmp((*a)[i].data(), (*b)[i].data(), sizeof(Descriptor)) == 0);
  // Its input convention is the recognizer's (RGB order, mean, scale): on the same crops the two
  // agree up to the resize (bilinear in LibTorch vs OpenCV) and the file's fp16 weights (measured
  // 0.011-0.015 on sample1's faces).
  auto rec = Recognizer::Create({testing::ModelsDir().string()});
  REQUIRE(rec.ok());
  auto ref = (*rec)->DescribeAligned(crops);
  REQUIRE(ref.ok());
  for (size_t i = 0; i < crops.size(); ++i) DOCTEST_CHECK(DescriptorDistance((*a)[i], (*ref)[i]) < 0.03);
}

TEST_CASE("a pseudonym reader refuses a corrupt file, another kind of model and crops of the wrong size") {
  TempDir t;
  const std::string path = (t.dir / kPseudonymReaderFile).string();
  WriteUntunedReader(path, std::string(64, 'a'));
  {
    auto bytes = keys::ReadFile(path, 64u << 20);
    REQUIRE(bytes.ok());
    std::string corrupt = *bytes;
    corrupt[corrupt.size() / 2] ^= 0x40;
    const std::string bad = (t.dir / "corrupt.veilmodel").string();
    std::ofstream(bad, std::ios::binary) << corrupt;
    auto r = PseudonymReader::Load(bad, testing::ModelsDir().string());
    REQUIRE_FALSE(r.ok());
    DOCTEST_CHECK(r.status().code() == StatusCode::kDataLoss);
  }
  {
    const std::string flow = DefaultIdentityFlowPath("");
    auto r = PseudonymReader::Load(flow, testing::ModelsDir().string());
    REQUIRE_FALSE(r.ok());
    DOCTEST_CHECK(r.status().code() == StatusCode::kInvalidArgument);
    DOCTEST_CHECK(r.status().message().find("expected a 'pseudonym-reader'") != std::string::npos);
  }
  auto reader = PseudonymReader::Load(path, testing::ModelsDir().string());
  REQUIRE(reader.ok());
  auto r = (*reader)->Read({cv::Mat(64, 64, CV_8UC3, cv::Scalar::all(0))});
  REQUIRE_FALSE(r.ok());
  DOCTEST_CHECK(r.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("approximate restore reads pseudonyms with the reader it is given, and refuses one for another generator") {
  TempDir t;
  testing::TestStore s('r');
  const cv::Mat& input = testing::DemoImage("sample1.jpg");
  const std::string match = (t.dir / "match.veilmodel").string(), other = (t.dir / "other.veilmodel").string();
  WriteUntunedReader(match, FileSha256(DefaultGeneratorModelPath()));
  WriteUntunedReader(other, std::string(64, 'b'));
  struct Case {
    std::string path;
    StatusCode code;
  };
  for (const Case& c : {Case{match, StatusCode::kOk}, Case{other, StatusCode::kInvalidArgument},
                        Case{(t.dir / "missing.veilmodel").string(), StatusCode::kNotFound}}) {
    CAPTURE(c.path);
    PipelineParams p;
    p.models_dir = testing::ModelsDir().string();
    p.method = ReplaceMethod::kSynthesized;
    p.reader_model = c.path;
    auto pipeline = Pipeline::Create(p);
    REQUIRE_MESSAGE(pipeline.ok(), pipeline.status().ToString());
    auto out = (*pipeline)->AnonymizeImage(input, s.Key(), ".png");
    REQUIRE(out.ok());
    cv::Mat anonymized = cv::imdecode(std::vector<uchar>(out->image_bytes.begin(), out->image_bytes.end()), cv::IMREAD_COLOR);
    auto approx = (*pipeline)->RestoreApproximate(anonymized, out->manifest, s.Grant(out->image_bytes));
    DOCTEST_CHECK(approx.status().code() == c.code);
    if (c.code == StatusCode::kOk) {
      REQUIRE(approx.ok());
      REQUIRE(approx->faces_restored >= 1);
      REQUIRE(approx->models.size() == 1);
      DOCTEST_CHECK(approx->models[0].role == "reader");
      DOCTEST_CHECK(approx->models[0].sha256_hex == FileSha256(match));
    }
  }
}

TEST_CASE("at the default path a reader is used only when it exists and serves the generator") {
  TempDir t;
  const std::string gen = FileSha256(DefaultGeneratorModelPath());
  const std::string path = DefaultPseudonymReaderPath((t.dir / "veil-encoder-v1.veilmodel").string());
  DOCTEST_CHECK(path == (t.dir / kPseudonymReaderFile).string());
  auto none = PseudonymReader::LoadIfFor(path, gen, testing::ModelsDir().string());
  REQUIRE(none.ok());
  DOCTEST_CHECK(*none == nullptr);
  WriteUntunedReader(path, std::string(64, 'c'));
  auto other = PseudonymReader::LoadIfFor(path, gen, testing::ModelsDir().string());
  REQUIRE(other.ok());
  DOCTEST_CHECK(*other == nullptr);
  WriteUntunedReader(path, gen);
  auto match = PseudonymReader::LoadIfFor(path, gen, testing::ModelsDir().string());
  REQUIRE(match.ok());
  DOCTEST_CHECK(*match != nullptr);
}

}  // namespace veil::engine
