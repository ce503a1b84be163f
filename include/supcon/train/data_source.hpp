#pragma once
/// \file data_source.hpp
/// The `--data` names of the CLI, resolved to data sets and their augmentation:
///
///   fashion-mnist   IDX files in --data-dir (default: Debian's dataset-fashion-mnist)
///   mnist           IDX files in --data-dir
///   cifar10         CIFAR-10 binary version in --data-dir
///   cifar100        CIFAR-100 binary version in --data-dir (fine labels)
///   folder:PATH     PATH/train/CLASS/* and PATH/test/CLASS/* image files
///
/// Every loader refuses missing or malformed files with an IoError naming the
/// file (and, for Fashion-MNIST, the package to install).

#include <memory>
#include <string>

#include "supcon/data/augment.hpp"
#include "supcon/data/cifar.hpp"
#include "supcon/data/dataset.hpp"
#include "supcon/data/idx.hpp"
#include "supcon/data/image_folder.hpp"

namespace supcon {

/// A training and a test set with the augmentation that suits them.
struct DataSource {
  std::string name;  ///< the --data value
  std::unique_ptr<data::Dataset> train, test;
  data::AugmentConfig augment;
};

/// Loads `name` from `dir` ("" = the data set's default place). A positive
/// `train_subset` keeps the first that many training images.
inline DataSource load_data_source(const std::string& name, const std::string& dir,
                                   index_t train_subset = 0) {
  DataSource ds;
  ds.name = name;
  auto keep = [](data::InMemoryDataset d) { return std::make_unique<data::InMemoryDataset>(std::move(d)); };
  if (name == "fashion-mnist" || name == "mnist") {
    const bool fashion = name == "fashion-mnist";
    const std::string d = dir.empty() ? (fashion ? data::default_fashion_mnist_dir : ".") : dir;
    ds.train = keep(fashion ? data::load_fashion_mnist(d, true) : data::load_mnist(d, true));
    ds.test = keep(fashion ? data::load_fashion_mnist(d, false) : data::load_mnist(d, false));
    ds.augment = data::AugmentConfig::fashion_mnist();
    if (!fashion) ds.augment.mean = {0.1307}, ds.augment.stddev = {0.3081};
  } else if (name == "cifar10" || name == "cifar100") {
    const std::string d = dir.empty() ? "." : dir;
    const bool ten = name == "cifar10";
    ds.train = keep(ten ? data::load_cifar10(d, true) : data::load_cifar100(d, true));
    ds.test = keep(ten ? data::load_cifar10(d, false) : data::load_cifar100(d, false));
    ds.augment = ten ? data::AugmentConfig::cifar10() : data::AugmentConfig::cifar100();
  } else if (name.rfind("folder:", 0) == 0) {
    const std::string root = name.substr(7);
    require(!root.empty(), "--data folder:PATH needs a path");
    auto train = std::make_unique<data::ImageFolderDataset>(root + "/train", 3, 32, 32);
    auto test = std::make_unique<data::ImageFolderDataset>(root + "/test", 3, 32, 32);
    ds.train = std::move(train);
    ds.test = std::move(test);
    ds.augment = data::AugmentConfig::cifar10();
  } else {
    throw ValueError("--data must be fashion-mnist, mnist, cifar10, cifar100 or folder:PATH, got '" +
                     name + "'");
  }
  if (train_subset > 0 && train_subset < ds.train->size())
    ds.train = keep(data::head(*ds.train, train_subset));
  return ds;
}

}  // namespace supcon
