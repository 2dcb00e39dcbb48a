// Test helper for the CLI walks (OpenCV only):
//   image_pixels same A B   exit 0 when A and B decode (EXIF orientation applied, as Veil reads
//                           photos) to identical 8-bit BGR pixels, 1 otherwise, 2 when one does not decode
#include <cstdio>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "same" && argc == 4) {
    const cv::Mat a = cv::imread(argv[2], cv::IMREAD_COLOR), b = cv::imread(argv[3], cv::IMREAD_COLOR);
    if (a.empty() || b.empty()) return 2;
    if (a.size() != b.size() || cv::norm(a, b, cv::NORM_INF) != 0) {
      std::printf("%s and %s differ\n", argv[2], argv[3]);
      return 1;
    }
    std::printf("identical pixels (%dx%d)\n", a.cols, a.rows);
    return 0;
  }
  std::fprintf(stderr, "usage: image_pixels same A B\n");
  return 2;
}
