#include "common/training_log.h"

namespace veil::train {

Status OpenTrainingLog(const std::string& path, const std::string& header, std::ofstream& log) {
  std::string latest;
  bool ends_line = true;  // a run killed mid-row leaves a line without its newline
  {
    std::ifstream in(path, std::ios::binary);
    const std::string first_column = header.substr(0, header.find('\t')) + '\t';
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(first_column, 0) == 0) latest = line;
      ends_line = !in.eof();
    }
  }
  log.open(path, std::ios::app);
  if (!log.is_open()) return IoError("cannot open the training log " + path);
  if (!ends_line) log << '\n';
  if (latest != header) log << header << '\n';
  log.flush();
  return log ? Status::Ok() : IoError("cannot write the training log " + path);
}

}  // namespace veil::train
