// The trainers' log.tsv: one row per logged step, tab-separated, under a header row.
#pragma once

#include <fstream>
#include <string>

#include "veil/status.h"

namespace veil::train {

// Opens `path` for appending and makes `header` (a tab-separated line, no newline) the header of
// the rows that follow: written first into a new file, and again into an existing one whose latest
// header differs (a run resumed by a newer trainer that logs other columns), so that every row
// sits under the header of its own columns.
Status OpenTrainingLog(const std::string& path, const std::string& header, std::ofstream& log);

}  // namespace veil::train
