// Test helper for the CLI video walk (OpenCV only):
//   video_frames make PHOTO OUT.avi N   a clip of N frames panning back and forth over PHOTO (Motion-JPEG)
//   video_frames same A B               exit 0 when A and B decode to identical frames, 1 otherwise
//   video_frames count FILE             prints the number of frames FILE decodes to
#include <cstdio>
#include <cstdlib>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "make" && argc == 5) {
    cv::Mat photo = cv::imread(argv[2]);
    if (photo.empty()) return 2;
    cv::resize(photo, photo, cv::Size(720, 480), 0, 0, cv::INTER_AREA);
    cv::VideoWriter w(argv[3], cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(640, 480));
    if (!w.isOpened()) return 2;
    // 6 px per frame across the 80 px of slack, then back: any number of frames.
    for (int i = 0, n = std::atoi(argv[4]); i < n; ++i) {
      const int step = i % 26, x = (step <= 13 ? step : 26 - step) * 6;
      w.write(photo(cv::Rect(x, 0, 640, 480)).clone());
    }
    return 0;
  }
  if (cmd == "same" && argc == 4) {
    cv::VideoCapture a(argv[2]), b(argv[3]);
    if (!a.isOpened() || !b.isOpened()) return 2;
    cv::Mat fa, fb;
    int frames = 0;
    for (;;) {
      const bool ra = a.read(fa), rb = b.read(fb);
      if (ra != rb) return 1;
      if (!ra) break;
      if (fa.size() != fb.size() || cv::norm(fa, fb, cv::NORM_INF) != 0) {
        std::printf("frame %d differs\n", frames);
        return 1;
      }
      ++frames;
    }
    std::printf("%d identical frames\n", frames);
    return 0;
  }
  if (cmd == "count" && argc == 3) {
    cv::VideoCapture v(argv[2]);
    if (!v.isOpened()) return 2;
    cv::Mat f;
    long long frames = 0;
    while (v.read(f)) ++frames;
    std::printf("%lld\n", frames);
    return 0;
  }
  std::fprintf(stderr, "usage: video_frames make PHOTO OUT.avi N | video_frames same A B | video_frames count FILE\n");
  return 2;
}
