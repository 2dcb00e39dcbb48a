// Where the engine finds its model folders when neither the params nor the environment say:
// the checkout the build was configured from (development builds, tests) while that folder exists,
// else the copy `cmake --install` wrote under <prefix>/share/veil (CMAKE_INSTALL_PREFIX at configure
// time). Installed under another prefix (`cmake --install --prefix P`), set the variables.
#pragma once

#include <string>

namespace veil::engine::internal {

// $`env_var` when set and non-empty; else `in_tree` when it is a folder; else
// <installed data dir>/`installed_name`.
std::string DefaultDataDir(const char* env_var, const std::string& in_tree, const std::string& installed_name);

}  // namespace veil::engine::internal
