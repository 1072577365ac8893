// Uses the installed loom C++ API: d/dx sum(x * x + 3x) = 2x + 3, checked against the closed form; the installed
// version header against the CMake package's version; and loads the plugin built from the installed headers.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "loom/backends/plugin.h"
#include "loom/core/version.h"
#include "loom/loom.h"

static int check_plugin() {
  // The plugin's init runs only after its ABI info (from the installed headers) matched libloom's.
  try {
    loom::load_backend(LOOM_PACKAGE_PLUGIN);
  } catch (const loom::Error& e) {
    const std::string msg = e.what();
    if (msg.find("init function of") != std::string::npos && msg.find("package plugin init ran") != std::string::npos)
      return 0;
    std::printf("FAIL: loading the package plugin: %s\n", msg.c_str());
    return 1;
  }
  std::printf("FAIL: the package plugin's init error was not reported\n");
  return 1;
}

int main() {
  if (std::strcmp(LOOM_VERSION, LOOM_PACKAGE_VERSION) != 0) {
    std::printf("FAIL: loom/core/version.h says %s, the CMake package %s\n", LOOM_VERSION, LOOM_PACKAGE_VERSION);
    return 1;
  }
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
  if (check_plugin() != 0) return 1;
  std::printf("loom %s package OK: y = %s, grad = %s, plugin loaded\n", LOOM_VERSION, y.str().c_str(),
              x.grad().str().c_str());
  return 0;
}
