#pragma once
// Each subcommand registers itself on the app and, when chosen, sets `run`
// to the function that does the work and returns the exit code.
#include <CLI/CLI.hpp>
#include <functional>

namespace supcon::cli {

using Runner = std::function<int()>;

void add_version_command(CLI::App& app, Runner& run);
void add_loss_command(CLI::App& app, Runner& run);
void add_compare_command(CLI::App& app, Runner& run);
void add_jensen_command(CLI::App& app, Runner& run);
void add_model_command(CLI::App& app, Runner& run);
void add_forward_command(CLI::App& app, Runner& run);
void add_gradcheck_command(CLI::App& app, Runner& run);
void add_train_command(CLI::App& app, Runner& run);
void add_linear_command(CLI::App& app, Runner& run);
void add_eval_command(CLI::App& app, Runner& run);
void add_embed_command(CLI::App& app, Runner& run);
void add_demo_command(CLI::App& app, Runner& run);

}  // namespace supcon::cli
