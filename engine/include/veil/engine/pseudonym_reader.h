// The pseudonym reader: reads the identity code a generator was given back from the face it
// rendered, for keyed restore without a payload.
//
//   auto reader = veil::engine::PseudonymReader::Load("models/veil-reader-v1.veilmodel", "");
//   auto codes = (*reader)->Read(crops);        // 128x128 BGR aligned crops of anonymized faces
//
// Keyed restore runs the flow backwards on the pseudonym read back from the anonymized face. The
// frozen recognizer reads it with an error about as large as the codes' own spread; the reader is
// the same dlib ResNet-34 fine-tuned on faces one generator rendered (engine/train/reader), so it
// serves that generator only: the file names the generator's SHA-256 (generator_sha256()), and the
// pipeline uses a reader only with that generator. Deterministic: the same crops give the same bits
// (for the same batch size and thread count). Not thread safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "veil/engine/recognizer.h"
#include "veil/status.h"

namespace veil::engine {

inline constexpr const char* kPseudonymReaderKind = "pseudonym-reader";
inline constexpr const char* kPseudonymReaderFile = "veil-reader-v1.veilmodel";

class PseudonymReader {
 public:
  // Reads and verifies the file (magic, version, SHA-256, kind, tensors). `face_api_dir` (empty:
  // the default) holds face-api's recognizer, whose layout the reader shares. DataLoss for a corrupt
  // file, InvalidArgument for another kind or mismatched tensors, NotFound / IoError for the file.
  static StatusOr<std::unique_ptr<PseudonymReader>> Load(const std::string& path, const std::string& face_api_dir);
  // The pipeline's rule: the reader at `path` when the file exists and was trained for the generator
  // with SHA-256 `generator_sha256`; nullptr when there is no file or it serves another generator;
  // the error when the file exists but does not load.
  static StatusOr<std::unique_ptr<PseudonymReader>> LoadIfFor(const std::string& path, const std::string& generator_sha256,
                                                              const std::string& face_api_dir);

  virtual ~PseudonymReader() = default;

  // One code per crop (128x128 8-bit BGR, Aligner output_size 128). InvalidArgument otherwise.
  virtual StatusOr<std::vector<Descriptor>> Read(const std::vector<cv::Mat>& crops) = 0;

  virtual const std::string& model_id() const = 0;
  virtual const std::string& model_sha256() const = 0;
  // SHA-256 (hex) of the generator model file whose faces this reader was trained on.
  virtual const std::string& generator_sha256() const = 0;
  // The ratio keyed restore denoises this reader's reads with (IdentityFlow::Denoise) before the
  // inverse flow: it replaces the generator's readback_noise_ratio, which is meant for the
  // recognizer's noisier read-back.
  virtual float DenoiseRatio() const = 0;
};

// kPseudonymReaderFile in the folder of `encoder_path` (empty: DefaultEncoderModelPath()).
std::string DefaultPseudonymReaderPath(const std::string& encoder_path);

}  // namespace veil::engine
