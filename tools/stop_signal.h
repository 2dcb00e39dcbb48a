// Ctrl-C (SIGINT) and SIGTERM for long-running commands: the first signal asks the work to stop
// at its next frame, file or step (StopRequested() turns true), so that it ends cleanly with
// nothing half-written; a second one ends the process at once (the default action).
#pragma once

namespace veil::cli {

class StopOnSignal {
 public:
  StopOnSignal();   // installs the handlers
  ~StopOnSignal();  // puts the previous ones back
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
};

// True once SIGINT or SIGTERM arrived while a StopOnSignal was alive. Async-signal-safe to set.
bool StopRequested();

}  // namespace veil::cli
