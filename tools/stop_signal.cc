#include "stop_signal.h"

#include <csignal>

#include <atomic>

namespace veil::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the flag is set from a signal handler");

struct sigaction g_old_int, g_old_term;

extern "C" void OnStopSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

}  // namespace

StopOnSignal::StopOnSignal() {
  g_stop.store(false);
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  // Interrupted system calls resume; the handler is one-shot, so a second signal is fatal.
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  // A signal ignored when we started (a background job of a script ignores SIGINT) stays ignored:
  // read the current disposition first and take over only the ones that are not.
  sigaction(SIGINT, nullptr, &g_old_int);
  sigaction(SIGTERM, nullptr, &g_old_term);
  if (g_old_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, nullptr);
  if (g_old_term.sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, nullptr);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }

}  // namespace veil::cli
