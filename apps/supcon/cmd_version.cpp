// `supcon version`: the library version and the features compiled in.
#include <iostream>
#include <supcon/config.hpp>

#include "commands.hpp"

namespace supcon::cli {

void add_version_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("version", "Print the version and the features compiled in");
  cmd->callback([&run]() {
    run = []() {
      std::cout << "supcon " << SUPCON_VERSION_STRING << "\n"
                << "openmp: " << (SUPCON_HAS_OPENMP ? "yes" : "no") << " (" << max_threads()
                << " threads)\n"
                << "cuda: " << (SUPCON_WITH_CUDA ? "yes" : "no") << "\n";
      return 0;
    };
  });
}

}  // namespace supcon::cli
