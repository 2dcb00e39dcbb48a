#include "replace_options.h"

namespace veil::cli {
namespace {

// Why --replace synthesized needs --experimental while the shipped models miss the privacy targets.
Status SynthesizedNotReady() {
  return FailedPreconditionError(
      "the shipped identity models are not good enough yet (models/README.md: the pseudonyms look blurred, some "
      "faces fail the identity check and are pixelated, and a restore without the sealed originals rarely gives "
      "the person back); add --experimental to use them anyway");
}

}  // namespace

StatusOr<ReplaceOptions> ReadReplaceOptions(Args& args) {
  auto method = engine::ParseReplaceMethod(args.GetOr("--replace", "pixelate"));
  const bool experimental = args.Flag("--experimental");
  const bool verify_given = args.Get("--verify-distance").has_value();
  auto verify = args.GetNumber("--verify-distance", engine::PipelineParams().verify_distance, 0, 2);
  const bool turn_given = args.Get("--max-turn").has_value();
  auto turn = args.GetNumber("--max-turn", engine::PipelineParams().max_turn, 0, 0.5);
  if (!method.ok()) return method.status();
  if (!verify.ok()) return verify.status();
  if (!turn.ok()) return turn.status();
  const bool synthesized = *method == engine::ReplaceMethod::kSynthesized;
  if (verify_given && !synthesized) {
    return InvalidArgumentError("--verify-distance checks synthesized faces: it needs --replace synthesized");
  }
  if (turn_given && !synthesized) {
    return InvalidArgumentError("--max-turn limits synthesized faces: it needs --replace synthesized");
  }
  if (synthesized && !experimental) return SynthesizedNotReady();
  return ReplaceOptions{*method, static_cast<float>(*verify), static_cast<float>(*turn)};
}

}  // namespace veil::cli
