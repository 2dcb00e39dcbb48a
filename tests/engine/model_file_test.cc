#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "default_dirs.h"
#include "veil/engine/model_file.h"

using namespace veil;
using namespace veil::engine;

namespace {

ModelFileContents Sample() {
  ModelFileContents m;
  m.model_id = "test-model-v1";
  m.kind = "identity-flow";
  m.options = {{"dim", "128"}, {"layers", "8"}};
  m.info = {{"data", "none"}};
  m.tensors.push_back({"a.weight", {2, 3}, {1.0f, -2.5f, 0.1f, 65504.0f, 1e-5f, 0.0f}, false});
  m.tensors.push_back({"b.bias", {3}, {0.333333f, -1.0f, 1000.25f}, true});
  return m;
}

}  // namespace

TEST_CASE("a model file round trips: float32 exactly, float16 to half precision") {
  std::string bytes = SerializeModelFile(Sample());
  auto back = ParseModelFile(bytes);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->model_id == "test-model-v1");
  CHECK(back->kind == "identity-flow");
  CHECK(back->options.at("layers") == "8");
  REQUIRE(back->tensors.size() == 2);
  CHECK(back->tensors[0].values == Sample().tensors[0].values);
  for (size_t i = 0; i < 3; ++i) {
    float want = Sample().tensors[1].values[i];
    CHECK(std::abs(back->tensors[1].values[i] - want) <= std::abs(want) * 1e-3f);
  }
  CHECK(back->sha256_hex.size() == 64);
}

TEST_CASE("a model file with a byte flipped anywhere is refused") {
  std::string bytes = SerializeModelFile(Sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    auto st = ParseModelFile(bad).status();
    INFO("offset " << i);
    CHECK_FALSE(st.ok());
    CHECK((st.code() == StatusCode::kDataLoss || st.code() == StatusCode::kUnsupported));
  }
}

TEST_CASE("a truncated model file, or another file, is refused with data loss") {
  std::string bytes = SerializeModelFile(Sample());
  for (size_t n = 0; n < bytes.size(); n += 3) CHECK(ParseModelFile(bytes.substr(0, n)).status().code() == StatusCode::kDataLoss);
  CHECK(ParseModelFile("GIF89a....").status().message().find("bad magic") != std::string::npos);
}

TEST_CASE("a model of another kind or architecture is refused with invalid argument") {
  auto m = Sample();
  CHECK(CheckModelOptions(m, "identity-flow", {{"dim", "128"}, {"layers", "8"}}).ok());
  CHECK(CheckModelOptions(m, "generator", {}).code() == StatusCode::kInvalidArgument);
  CHECK(CheckModelOptions(m, "identity-flow", {{"layers", "6"}}).code() == StatusCode::kInvalidArgument);
  CHECK(CheckModelOptions(m, "identity-flow", {{"width", "64"}}).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("saving never replaces a model file unless asked to") {
  auto dir = std::filesystem::temp_directory_path() / "veil-model-file-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.veilmodel").string();
  REQUIRE(SaveModelFile(path, Sample(), false).ok());
  CHECK(SaveModelFile(path, Sample(), false).code() == StatusCode::kAlreadyExists);
  CHECK(SaveModelFile(path, Sample(), true).ok());
  auto loaded = LoadModelFile(path);
  REQUIRE(loaded.ok());
  CHECK(loaded->tensors.size() == 2);
  CHECK(LoadModelFile((dir / "missing").string()).status().code() == StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST_CASE("model folders: the environment first, then the checkout's folder while it exists, else the installed copy") {
  namespace fs = std::filesystem;
  const char* var = "VEIL_TEST_MODEL_FOLDER";
  const std::string here = fs::temp_directory_path().string();
  ::setenv(var, "/from/the/environment", 1);
  CHECK(internal::DefaultDataDir(var, here, "face-api") == "/from/the/environment");
  ::unsetenv(var);
  CHECK(internal::DefaultDataDir(var, here, "face-api") == here);
  const std::string installed = internal::DefaultDataDir(var, "/no/such/checkout/models", "face-api");
  CHECK(installed.size() > std::string("/share/veil/face-api").size());
  CHECK(installed.compare(installed.size() - 20, 20, "/share/veil/face-api") == 0);
  ::setenv(var, "", 1);  // empty: as if unset
  CHECK(internal::DefaultDataDir(var, "/no/such/checkout/models", "models") == installed.substr(0, installed.size() - 8) + "models");
  ::unsetenv(var);
}
