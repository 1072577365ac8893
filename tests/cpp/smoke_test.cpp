// The smallest end-to-end check of the C++ API; the thorough C++ suite lives beside it.
#include <gtest/gtest.h>

#include "loom/loom.h"

TEST(Smoke, AddBroadcastsAndDifferentiates) {
  loom::Tensor a = loom::ones({2, 3});
  a.set_requires_grad(true);
  loom::Tensor b = loom::arange(loom::Scalar(0.0), loom::Scalar(3.0));
  loom::Tensor loss = loom::sum(a * b);
  loss.backward();
  EXPECT_EQ(loss.item().to_double(), 6.0);
  EXPECT_EQ(a.grad().sizes(), (loom::Shape{2, 3}));
  EXPECT_EQ(a.grad().data<float>()[4], 1.0f);
}
