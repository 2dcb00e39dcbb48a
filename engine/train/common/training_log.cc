#include "common/training_log.h"

namespace veil::train {

Status OpenTrainingLog(const std::string& path, const std::string& header, std::ofstream& log) {
  std::string latest;
  {
    std::ifstream in(path);
    const std::string first_column = header.substr(0, header.find('\t') + 1);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(first_column, 0) == 0) latest = line;
    }
  }
  log.open(path, std::ios::app);
  if (!log.is_open()) return IoError("cannot open the training log " + path);
  if (latest != header) log << header << '\n';
  log.flush();
  return log ? Status::Ok() : IoError("cannot write the training log " + path);
}

}  // namespace veil::train
