// supcon embed: a 2-D picture (PCA or t-SNE) of the test-set encoder
// features of a checkpoint, drawn as an SVG scatter coloured by class.
#include <iostream>

#include <supcon/train/tsne.hpp>

#include "commands.hpp"
#include "train_steps.hpp"

namespace supcon::cli {
namespace {

struct EmbedArgs {
  std::string checkpoint, out = "embedding.svg", data_dir, title, method = "pca";
  std::int64_t samples = 2000, tsne_iterations = 1000;
  double perplexity = 30;
  int threads = 0;
};

int run_embed(const EmbedArgs& a) {
  apply_threads(a.threads);
  require(a.samples >= 2, "--samples must be >= 2, got ", a.samples);
  LoadedModel m = load_model(a.checkpoint);
  if (!a.data_dir.empty()) m.data.data_dir = a.data_dir;
  const DataSource src = load_data_source(m.data.data, m.data.data_dir, m.data.train_subset);
  const bool tsne_map = a.method == "tsne";
  const std::string title = a.title.empty() ? std::string(method_name(m.cfg.method)) + " encoder features, " +
                                                  (tsne_map ? "t-SNE" : "PCA") + " of the test set"
                                            : a.title;
  if (!tsne_map) {
    embed_to_svg(m, src, a.samples, a.out, title);
  } else {
    const data::InMemoryDataset sub = data::head(*src.test, a.samples);
    const FeatureSet<float> f = extract_features(m.encoder(), sub, src.augment);
    TsneOptions opt;
    opt.perplexity = a.perplexity;
    opt.iterations = a.tsne_iterations;
    opt.exaggeration_iters = std::min<index_t>(opt.exaggeration_iters, a.tsne_iterations / 4);
    // On the unit sphere, as the loss and kNN see the features.
    const Tensor<double> y = tsne(l2_normalized_rows(f.features), opt);
    embedding_plot(y, f.labels, title, class_names(src.name)).save(a.out);
  }
  std::cout << "wrote " << a.out << " (" << std::min<std::int64_t>(a.samples, src.test->size())
            << " test images)\n";
  return 0;
}

}  // namespace

void add_embed_command(CLI::App& app, Runner& run) {
  auto a = std::make_shared<EmbedArgs>();
  auto* cmd = app.add_subcommand("embed", "2-D picture (PCA or t-SNE) of a checkpoint's test-set embeddings (SVG)");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint.ckpt of `supcon train`")->required();
  cmd->add_option("--out", a->out, "SVG file to write")->capture_default_str();
  cmd->add_option("--samples", a->samples, "First N test images")->capture_default_str();
  cmd->add_option("--method", a->method, "pca, or tsne (exact t-SNE: O(samples^2) per iteration)")
      ->check(CLI::IsMember({"pca", "tsne"}))->capture_default_str();
  cmd->add_option("--perplexity", a->perplexity, "t-SNE: effective neighbours, at most (samples - 1) / 3")
      ->capture_default_str();
  cmd->add_option("--tsne-iterations", a->tsne_iterations, "t-SNE: gradient steps")->capture_default_str();
  cmd->add_option("--title", a->title, "Plot title");
  cmd->add_option("--data-dir", a->data_dir, "Folder of the data files (default: as in training)");
  cmd->add_option("--threads", a->threads, "OpenMP threads (0 = default)")->capture_default_str();
  cmd->callback([a, &run] { run = [a] { return run_embed(*a); }; });
}

}  // namespace supcon::cli
