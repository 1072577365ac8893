// The geometry of one conv2d call as the CPU kernels see it (conv.cpp, conv_onednn.cpp): sizes, groups, stride,
// padding {top, bottom, left, right} and dilation, read from the op's inputs and attributes (ops/conv.h), which
// validated them and checked the arithmetic.
#pragma once
#include <cstdint>

#include "loom/ops/registry.h"

namespace loom::cpu {

struct Geo {
  int64_t N, C, H, W, O, Cg, Og, kh, kw, oh, ow, groups;
  int64_t sh, sw, pt, pb, pl, pr, dh, dw;
  int64_t K() const { return Cg * kh * kw; }
  int64_t L() const { return oh * ow; }
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pb == 0 && pl == 0 && pr == 0; }
};

inline Geo geo_of(const Shape& x, const Shape& w, const Attrs& a) {
  Geo g;
  const Shape &s = a.get<Shape>("stride"), &p = a.get<Shape>("padding"), &d = a.get<Shape>("dilation");
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.O = w[0], g.Cg = w[1], g.kh = w[2], g.kw = w[3];
  g.groups = a.get<int64_t>("groups");
  g.Og = g.O / g.groups;
  g.sh = s[0], g.sw = s[1], g.pt = p[0], g.pb = p[1], g.pl = p[2], g.pr = p[3], g.dh = d[0], g.dw = d[1];
  g.oh = (g.H + g.pt + g.pb - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.W + g.pl + g.pr - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

}  // namespace loom::cpu
