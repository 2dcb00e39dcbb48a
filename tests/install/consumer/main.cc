// A program outside the Veil tree, built against the installed package, with the installed models.
// Usage: consumer STORE KEY_FILE PHOTO FACES   (exit 0: every check passed)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "veil/engine/image_io.h"
#include "veil/engine/pipeline.h"
#include "veil/keys/credential.h"
#include "veil/keys/key_store.h"

namespace {

int Failed(const char* what, const veil::Status& st) {
  std::printf("%s: %s\n", what, st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  {  // Without models the pipeline refuses with NotFound.
    veil::PipelineParams p;
    p.models_dir = "/nonexistent";
    auto pipeline = veil::Pipeline::Create(p);
    if (pipeline.ok() || pipeline.status().code() != veil::StatusCode::kNotFound) return Failed("no models", pipeline.status());
  }
  auto credential = veil::keys::Credential::FromKeyFile(argv[2]);
  if (!credential.ok()) return Failed("credential", credential.status());
  auto store = veil::keys::KeyStore::Open(argv[1], *credential, veil::keys::KeyStore::Access::kReadWrite, "consumer");
  if (!store.ok()) return Failed("store", store.status());
  auto key = (*store)->KeyForNewWork("default", "install test");
  if (!key.ok()) return Failed("key", key.status());
  auto photo = veil::engine::ReadImage(argv[3]);
  if (!photo.ok()) return Failed("photo", photo.status());
  const size_t expected = std::strtoul(argv[4], nullptr, 10);
  // Pixelated, then synthesized (the installed face-api weights and Veil's own E, G and flow).
  for (auto method : {veil::ReplaceMethod::kPixelate, veil::ReplaceMethod::kSynthesized}) {
    veil::PipelineParams params;
    params.method = method;
    size_t calls = 0;
    params.progress = [&](int, int) { ++calls; };
    auto pipeline = veil::Pipeline::Create(params);
    if (!pipeline.ok()) return Failed("pipeline", pipeline.status());
    auto out = (*pipeline)->AnonymizeImage(*photo, *key, ".png");
    if (!out.ok()) return Failed("anonymize", out.status());
    std::printf("method %d: %zu faces, %zu progress calls, %zu bytes\n", static_cast<int>(method),
                out->manifest.faces.size(), calls, out->image_bytes.size());
    if (out->manifest.faces.size() != expected || calls != expected || out->image_bytes.empty()) return 1;
  }
  return 0;
}
