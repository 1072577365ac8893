// Uses the installed loom C++ API: d/dx sum(x * x + 3x) = 2x + 3, checked against the closed form.
#include <cmath>
#include <cstdio>

#include "loom/loom.h"

int main() {
  loom::Tensor x = loom::arange(loom::Scalar(0.0), loom::Scalar(4.0));
  x.set_requires_grad(true);
  loom::Tensor y = loom::sum(x * x + x * loom::Scalar(3.0));
  y.backward();
  const float* g = x.grad().data<float>();
  for (int i = 0; i < 4; ++i) {
    if (std::fabs(g[i] - (2.0f * i + 3.0f)) > 1e-6f) {
      std::printf("FAIL: grad[%d] = %f, expected %f\n", i, g[i], 2.0 * i + 3.0);
      return 1;
    }
  }
  std::printf("loom package OK: y = %s, grad = %s\n", y.str().c_str(), x.grad().str().c_str());
  return 0;
}
