// `supcon gradcheck`: the library's central-difference gradient checks
// (supcon/testing/gradcheck_suite.hpp), in double on small seeded inputs:
// every layer, the residual blocks, a small ResNet with its head, the losses.
// One line per check with its worst relative error; exit status 1 if any fails.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <supcon/testing/gradcheck_suite.hpp>

#include "commands.hpp"

namespace supcon::cli {
namespace {

struct GradcheckArgs {
  std::string what = "all";
  bool json = false;
  bool list = false;
};

int run_gradcheck_command(const GradcheckArgs& a) {
  // Validate the name before running anything, so a typo fails at once.
  const std::vector<testing::GradCheck> checks = testing::select_gradchecks(a.what);
  if (a.list) {
    for (const testing::GradCheck& c : checks)
      std::printf("%-32s %-8s %s\n", c.name.c_str(), c.group.c_str(), c.what.c_str());
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<testing::GradCheckResult> results = testing::run_gradchecks(checks);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  int failed = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const testing::GradCheckResult& r = results[i];
    failed += r.passed ? 0 : 1;
    if (!a.json)
      std::printf("%-4s  %-32s max rel error %9.2e  (tol %.0e)  %s\n", r.passed ? "PASS" : "FAIL", r.name.c_str(),
                  r.max_rel_error, r.tolerance, checks[i].what.c_str());
  }
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const testing::GradCheckResult& r : results)
      j.push_back({{"name", r.name}, {"max_rel_error", r.max_rel_error}, {"tolerance", r.tolerance},
                   {"passed", r.passed}});
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%zu checks in %.2f s: %zu passed, %d failed\n", results.size(), dt.count(),
                results.size() - static_cast<std::size_t>(failed), failed);
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

void add_gradcheck_command(CLI::App& app, Runner& run) {
  auto args = std::make_shared<GradcheckArgs>();
  auto* cmd = app.add_subcommand("gradcheck", "Check every layer's, block's and loss's gradient against "
                                              "central differences (double precision)");
  cmd->footer("Errors are relative, per tensor, with a floor of 1e-3 times the tensor's largest entry\n"
              "(supcon/testing/check_module.hpp). --list shows the names --what accepts.");
  cmd->add_option("--what", args->what, "A check's name, a group (layers, blocks, network, losses) or all")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print a JSON array of {name, max_rel_error, tolerance, passed}");
  cmd->add_flag("--list", args->list, "List the checks (name, group, description) without running them");
  cmd->callback([&run, args]() { run = [args]() { return run_gradcheck_command(*args); }; });
}

}  // namespace supcon::cli
