// The plain replacements (blur, pixelate, solid) of a face region, in place (internal).
#pragma once

#include <opencv2/core.hpp>

#include "veil/engine/manifest.h"

namespace veil::engine::internal {

// The region a face's replacement touches: its box grown by `margin` on every side, clipped.
cv::Rect ReplacementRegion(const cv::Rect2f& box, float margin, const cv::Size& image_size);

// Replaces `region` of `image` (8-bit BGR) with `method`. Irreversible without the payload: blur
// uses a kernel as wide as a third of the region, pixelation blocks of a tenth of it (at least 6
// pixels), solid a flat grey.
void ReplacePlain(cv::Mat& image, const cv::Rect& region, ReplaceMethod method);

}  // namespace veil::engine::internal
