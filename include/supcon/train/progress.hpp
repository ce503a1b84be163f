#pragma once
/// \file progress.hpp
/// A one-line progress bar for long work, redrawn in place with a carriage return:
///
///     epoch 3/10 [########--------]  52%  81/156  ETA 1m12s  loss 4.712  lr 0.231  512 img/s
///
/// Redraws at most ten times a second (and always on the last item). When the
/// stream is not a terminal, set `live` to false: then only the final line of
/// each bar is printed, so logs stay readable.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace supcon {

/// "1h02m", "3m05s" or "42s"; "?" for a negative or non-finite time.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  else if (s >= 60) std::snprintf(b, sizeof b, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else std::snprintf(b, sizeof b, "%llds", static_cast<long long>(s));
  return b;
}

class ProgressBar {
 public:
  /// A bar over `total` >= 1 items labelled `label`, drawn on `out`.
  ProgressBar(std::ostream& out, std::int64_t total, std::string label, bool live)
      : out_(out), total_(total < 1 ? 1 : total), label_(std::move(label)), live_(live),
        start_(std::chrono::steady_clock::now()) {}

  /// `done` items finished; `fields` are extra (name, value) pairs to show.
  /// The ETA extrapolates the mean time per item since the bar was made.
  void update(std::int64_t done, const std::vector<std::pair<std::string, std::string>>& fields = {}) {
    const auto now = std::chrono::steady_clock::now();
    const bool last = done >= total_;
    if (!last && (!live_ || now - drawn_ < std::chrono::milliseconds(100))) return;
    drawn_ = now;
    line_ = render(done, std::chrono::duration<double>(now - start_).count(), fields);
    if (live_) out_ << '\r' << line_ << "\x1b[K" << (last ? "\n" : "") << std::flush;
    else if (last) out_ << line_ << '\n' << std::flush;
  }

  /// The text of the bar for `done` items after `elapsed` seconds.
  std::string render(std::int64_t done, double elapsed,
                     const std::vector<std::pair<std::string, std::string>>& fields) const {
    const int width = 20;
    const double frac = std::min(1.0, std::max(0.0, static_cast<double>(done) / total_));
    const int fill = static_cast<int>(frac * width);
    std::string s = label_ + " [" + std::string(fill, '#') + std::string(width - fill, '-') + "] ";
    char b[64];
    std::snprintf(b, sizeof b, "%3d%%  %lld/%lld  ", static_cast<int>(frac * 100),
                  static_cast<long long>(done), static_cast<long long>(total_));
    s += b;
    const double eta = done > 0 ? elapsed / done * (total_ - done) : -1;
    s += done >= total_ ? "took " + format_duration(elapsed) : "ETA " + format_duration(eta);
    for (const auto& [name, value] : fields) s += "  " + name + " " + value;
    return s;
  }

  /// The last line drawn.
  const std::string& line() const { return line_; }

 private:
  std::ostream& out_;
  std::int64_t total_;
  std::string label_;
  bool live_;
  std::chrono::steady_clock::time_point start_, drawn_{};
  std::string line_;
};

}  // namespace supcon
