// Classification metrics on hand-made scores: top-1, top-5, per-class
// accuracy and the confusion matrix.
#include <catch2/catch.hpp>
#include <supcon/train/metrics.hpp>

using namespace supcon;

TEST_CASE("top-1 counts rows whose highest score is the true class") {
  // Row 0: class 1 wins (true 1, hit); row 1: class 0 wins (true 2, miss);
  // row 2: class 2 wins (true 2, hit); row 3: class 1 wins (true 0, miss).
  const Tensor<double> s({4, 3}, {0.1, 0.7, 0.2,  //
                                  0.9, 0.0, 0.1,  //
                                  0.0, 0.3, 0.6,  //
                                  0.2, 0.5, 0.3});
  const ClassificationMetrics m = classification_metrics(s, {1, 2, 2, 0});
  CHECK(m.top1 == Approx(0.5));
  CHECK(m.samples == 4);
  CHECK(m.classes == 3);
}

TEST_CASE("the confusion matrix has true classes as rows and predictions as columns") {
  const Tensor<float> s({4, 3}, {0.1f, 0.7f, 0.2f, 0.9f, 0.0f, 0.1f, 0.0f, 0.3f, 0.6f, 0.2f, 0.5f, 0.3f});
  const ClassificationMetrics m = classification_metrics(s, {1, 2, 2, 0});
  const std::vector<index_t> expected = {0, 1, 0,   // true 0 predicted as 1
                                         0, 1, 0,   // true 1 predicted as 1
                                         1, 0, 1};  // true 2 predicted as 0 and as 2
  CHECK(m.confusion == expected);
  CHECK(m.class_count == std::vector<index_t>{1, 1, 2});
  CHECK(m.per_class == std::vector<double>{0.0, 1.0, 0.5});
}

TEST_CASE("top-5 counts a hit when at most four classes score above the true one") {
  // Seven classes; the true class 0 ranks 5th in row 0 (hit) and 6th in row 1 (miss).
  const Tensor<double> s({2, 7}, {3, 7, 6, 5, 4, 2, 1,  //
                                  2, 7, 6, 5, 4, 3, 1});
  const ClassificationMetrics m = classification_metrics(s, {0, 0});
  CHECK(m.top1 == 0);
  CHECK(m.top5 == Approx(0.5));
}

TEST_CASE("top-5 is always 1 when there are at most five classes") {
  const Tensor<double> s({2, 4}, {1, 2, 3, 4, 4, 3, 2, 1});
  CHECK(classification_metrics(s, {0, 3}).top5 == 1);
}

TEST_CASE("hard predictions give top-1, per-class accuracy and confusion") {
  const ClassificationMetrics m = prediction_metrics({0, 1, 1, 2}, {0, 1, 2, 2}, 3);
  CHECK(m.top1 == Approx(0.75));
  CHECK(m.confusion == std::vector<index_t>{1, 0, 0, 0, 1, 0, 0, 1, 1});
  CHECK(m.per_class[2] == Approx(0.5));
}

TEST_CASE("metrics refuse mismatched labels, out-of-range labels and NaN scores") {
  const Tensor<double> s({2, 3}, {1, 2, 3, 3, 2, 1});
  CHECK_THROWS_AS(classification_metrics(s, {0}), ShapeError);
  CHECK_THROWS_WITH(classification_metrics(s, {0, 3}), Catch::Contains("label 3 of row 1 outside [0, 3)"));
  Tensor<double> bad = s;
  bad[4] = std::nan("");
  CHECK_THROWS_WITH(classification_metrics(bad, {0, 1}), Catch::Contains("NaN"));
  CHECK_THROWS_AS(prediction_metrics({0, 5}, {0, 1}, 3), ValueError);
}
