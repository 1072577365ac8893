// conv2d through oneDNN (see conv_onednn.h). Tensors stay in loom's plain NCHW / OIHW layout; each call lets
// oneDNN choose its layouts (format_tag::any) and reorders into and out of them, as PyTorch's oneDNN path does
// for plain tensors. Primitive descriptors are rebuilt per call (oneDNN caches the compiled primitives).
#include "loom/backends/cpu/conv_onednn.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>


#include "loom/backends/cpu/gemm/engine.h"
#include "loom/backends/cpu/gemm/onednn_context.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/core/error.h"

namespace loom::cpu {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

using gemm::onednn::cpu_engine;

struct Dims {
  memory::dims x, w, b, y, stride, dilation, pad_l, pad_r;
  Tag w_tag;
};

Dims dims_of(const Geo& g) {
  Dims d;
  d.x = {g.N, g.C, g.H, g.W};
  d.y = {g.N, g.O, g.oh, g.ow};
  d.b = {g.O};
  d.stride = {g.sh, g.sw};
  d.dilation = {g.dh - 1, g.dw - 1};  // oneDNN counts the gaps between taps
  d.pad_l = {g.pt, g.pl};
  d.pad_r = {g.pb, g.pr};
  if (g.groups == 1) {
    d.w = {g.O, g.Cg, g.kh, g.kw};
    d.w_tag = Tag::oihw;
  } else {
    d.w = {g.groups, g.Og, g.Cg, g.kh, g.kw};
    d.w_tag = Tag::goihw;
  }
  return d;
}

memory plain(const memory::dims& dims, Tag tag, const Tensor& t) {
  return memory({dims, memory::data_type::f32, tag}, cpu_engine(), const_cast<void*>(t.data_ptr()));
}

memory::desc any(const memory::dims& dims) { return {dims, memory::data_type::f32, Tag::any}; }

// m in the layout `want`: m itself when it already has it, else a reordered copy.
memory as(const memory& m, const memory::desc& want, dnnl::stream& s) {
  if (m.get_desc() == want) return m;
  memory out(want, cpu_engine());
  dnnl::reorder(m, out).execute(s, const_cast<memory&>(m), out);
  return out;
}

// A destination in the layout `want` whose result ends in `target` (finish() copies it back when they differ).
struct Destination {
  memory target, work;
  Destination(memory t, const memory::desc& want) : target(std::move(t)) {
    work = target.get_desc() == want ? target : memory(want, cpu_engine());
  }
  void finish(dnnl::stream& s) {
    if (work != target) dnnl::reorder(work, target).execute(s, work, target);
  }
};

dnnl::convolution_forward::primitive_desc forward_pd(const Dims& d, bool with_bias) {
  using F = dnnl::convolution_forward;
  F::desc desc = with_bias ? F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                     any(d.x), any(d.w), any(d.b), any(d.y), d.stride, d.dilation, d.pad_l, d.pad_r)
                           : F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                     any(d.x), any(d.w), any(d.y), d.stride, d.dilation, d.pad_l, d.pad_r);
  return F::primitive_desc(desc, cpu_engine());
}

template <class F>
void run(const char* op, F&& body) {
  gemm::prepare_onednn_threads();
  try {
    dnnl::stream& s = gemm::onednn::thread_stream();
    body(s);
    s.wait();
  } catch (const dnnl::error& e) {
    fail(ErrorKind::Runtime, op, ": oneDNN convolution failed: ", e.what());
  }
}

bool env_allows_onednn() {
  static const bool allowed = [] {
    const char* v = std::getenv("LOOM_CONV");
    return v == nullptr || std::strcmp(v, "loom") != 0;
  }();
  return allowed;
}

}  // namespace

bool onednn_conv_wanted(DType dtype) {
  return dtype == DType::Float32 && cpu_capability() == CpuCapability::Avx512 && env_allows_onednn();
}

void onednn_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const Geo& g) {
  Dims d = dims_of(g);
  run("conv2d", [&](dnnl::stream& s) {
    auto pd = forward_pd(d, bias.defined());
    memory xm = as(plain(d.x, Tag::nchw, x), pd.src_desc(), s);
    memory wm = as(plain(d.w, d.w_tag, w), pd.weights_desc(), s);
    Destination y(plain(d.y, Tag::nchw, out), pd.dst_desc());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, y.work}};
    if (bias.defined()) args[DNNL_ARG_BIAS] = plain(d.b, Tag::x, bias);
    dnnl::convolution_forward(pd).execute(s, args);
    y.finish(s);
  });
}

void onednn_conv2d_backward(const Tensor& gout, const Tensor& x, const Tensor& w, Tensor& gx, Tensor& gw,
                            const Geo& g, bool need_x, bool need_w) {
  Dims d = dims_of(g);
  run("conv2d_backward", [&](dnnl::stream& s) {
    auto hint = forward_pd(d, false);
    memory gy_plain = plain(d.y, Tag::nchw, gout);
    if (need_x) {
      using B = dnnl::convolution_backward_data;
      B::primitive_desc pd(B::desc(dnnl::algorithm::convolution_direct, any(d.x), any(d.w), any(d.y), d.stride,
                                   d.dilation, d.pad_l, d.pad_r),
                           cpu_engine(), hint);
      memory gym = as(gy_plain, pd.diff_dst_desc(), s);
      memory wm = as(plain(d.w, d.w_tag, w), pd.weights_desc(), s);
      Destination gxm(plain(d.x, Tag::nchw, gx), pd.diff_src_desc());
      B(pd).execute(s, {{DNNL_ARG_DIFF_DST, gym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, gxm.work}});
      gxm.finish(s);
    }
    if (need_w) {
      using B = dnnl::convolution_backward_weights;
      B::primitive_desc pd(B::desc(dnnl::algorithm::convolution_direct, any(d.x), any(d.w), any(d.y), d.stride,
                                   d.dilation, d.pad_l, d.pad_r),
                           cpu_engine(), hint);
      memory xm = as(plain(d.x, Tag::nchw, x), pd.src_desc(), s);
      memory gym = as(gy_plain, pd.diff_dst_desc(), s);
      Destination gwm(plain(d.w, d.w_tag, gw), pd.diff_weights_desc());
      B(pd).execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, gym}, {DNNL_ARG_DIFF_WEIGHTS, gwm.work}});
      gwm.finish(s);
    }
  });
}

}  // namespace loom::cpu
