// Uses the installed headers: a tensor, a matrix product, the version.
#include <iostream>
#include <supcon/supcon.hpp>

int main() {
  supcon::Tensor<float> a({2, 3}, 1.0f);
  const float s = (a.matrix() * a.matrix().transpose()).sum();  // 4 entries of 3
  if (s != 12.0f) return 1;
  std::cout << "supcon " << SUPCON_VERSION_STRING << ": find_package works\n";
  return 0;
}
