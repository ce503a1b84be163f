#pragma once
/// \file interrupt.hpp
/// Ctrl-C during training: the first SIGINT (or SIGTERM) only sets a flag,
/// which the training loop reads before every step; it then saves a
/// checkpoint and the logs and stops. A second signal ends the program at
/// once (the default action is restored by the first).

#include <atomic>
#include <csignal>

namespace supcon {

/// The flag the handler sets; training loops take a pointer to it.
inline std::atomic<bool>& interrupt_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace detail {
inline void on_interrupt_signal(int sig) {
  interrupt_flag().store(true);  // lock-free: safe in a signal handler
  std::signal(sig, SIG_DFL);
}
}  // namespace detail

/// Installs the handler for SIGINT and SIGTERM and clears the flag.
inline void install_interrupt_handler() {
  static_assert(std::atomic<bool>::is_always_lock_free, "the flag must be lock-free");
  interrupt_flag().store(false);
  std::signal(SIGINT, detail::on_interrupt_signal);
  std::signal(SIGTERM, detail::on_interrupt_signal);
}

}  // namespace supcon
