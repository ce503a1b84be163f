// supcon: the command-line program. Subcommands live in one file each.
#include <exception>
#include <iostream>
#include <supcon/config.hpp>
#include <supcon/core/memory.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  supcon::keep_freed_memory();  // steps reuse their freed tensors instead of fresh pages
  CLI::App app{"supcon: Supervised Contrastive Learning from first principles"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SUPCON_VERSION_STRING);

  supcon::cli::Runner run;
  supcon::cli::add_version_command(app, run);
  supcon::cli::add_loss_command(app, run);
  supcon::cli::add_compare_command(app, run);
  supcon::cli::add_jensen_command(app, run);
  supcon::cli::add_model_command(app, run);
  supcon::cli::add_forward_command(app, run);
  supcon::cli::add_gradcheck_command(app, run);
  supcon::cli::add_train_command(app, run);
  supcon::cli::add_linear_command(app, run);
  supcon::cli::add_eval_command(app, run);
  supcon::cli::add_embed_command(app, run);
  supcon::cli::add_demo_command(app, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line on stderr: the reason, without the usage dump.
    std::cerr << "supcon: " << e.what() << " (see --help)\n";
    return 2;
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::cerr << "supcon: " << e.what() << "\n";
    return 1;
  }
}
