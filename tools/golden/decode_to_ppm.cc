// Decodes an image with OpenCV (the decoder the engine uses) and writes binary PPM (P6, RGB), so
// that the JavaScript reference sees exactly the pixels the C++ port sees.
// Build: g++ -O2 decode_to_ppm.cc -o decode_to_ppm $(pkg-config --cflags --libs opencv4)
#include <cstdio>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: decode_to_ppm IN OUT.ppm\n");
    return 2;
  }
  cv::Mat bgr = cv::imread(argv[1], cv::IMREAD_COLOR);
  if (bgr.empty()) {
    std::fprintf(stderr, "decode_to_ppm: cannot decode %s\n", argv[1]);
    return 1;
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  std::ofstream out(argv[2], std::ios::binary);
  out << "P6\n" << rgb.cols << " " << rgb.rows << "\n255\n";
  for (int y = 0; y < rgb.rows; ++y) out.write(reinterpret_cast<const char*>(rgb.ptr(y)), rgb.cols * 3);
  return out ? 0 : 1;
}
