// Tensor basics in C++, without Python: creation, views, broadcasting and autograd.
//   cmake -S . -B build/cmake -G Ninja -DLOOM_BUILD_PYTHON=OFF && cmake --build build/cmake && build/cmake/tensor_basics
#include <iostream>

#include "loom/loom.h"

int main() {
  // Creation: a 2x3 matrix 0..5 and a column of ones.
  loom::Tensor a = loom::reshape(loom::arange(loom::Scalar(0.0), loom::Scalar(6.0), loom::Scalar(1.0)), {2, 3});
  loom::Tensor b = loom::ones({2, 1});
  std::cout << "a = " << a.str() << "\n";

  // Views share storage: writing through the transpose changes a.
  loom::Tensor at = loom::transpose(a, 0, 1);
  loom::Tensor corner = loom::select(loom::select(at, 0, 2), 0, 1);  // a[1, 2]
  loom::fill_(corner, loom::Scalar(50.0));
  std::cout << "after writing a.T[2, 1] = 50: a = " << a.str() << "\n";

  // Broadcasting: (2, 3) + (2, 1).
  std::cout << "a + b = " << loom::add(a, b).str() << "\n";

  // Autograd: y = sum(w * x^2 + sin(w)); dy/dw = x^2 + cos(w), dy/dx = 2 w x.
  loom::Tensor w = loom::full({3}, loom::Scalar(0.5));
  loom::Tensor x = loom::arange(loom::Scalar(1.0), loom::Scalar(4.0), loom::Scalar(1.0));
  w.set_requires_grad(true);
  x.set_requires_grad(true);
  loom::Tensor y = loom::sum(loom::add(loom::mul(w, loom::mul(x, x)), loom::sin(w)));
  y.backward();
  std::cout << "y = " << y.item().to_double() << "\n";
  std::cout << "dy/dw = " << w.grad().str() << "\n";
  std::cout << "dy/dx = " << x.grad().str() << "\n";

  // Errors are loom::Error with a kind (ValueError/TypeError/... in Python).
  try {
    loom::add(loom::ones({2, 3}), loom::ones({4, 5}));
  } catch (const loom::Error& e) {
    std::cout << "error: " << e.what() << "\n";
  }
  return 0;
}
