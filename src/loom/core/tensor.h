// Tensor: a cheap handle to a TensorImpl (storage + offset + sizes + strides + dtype + autograd state).
// Copying a Tensor shares the impl, as in PyTorch. Views share storage with their base and never copy.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/device.h"
#include "loom/core/dtype.h"
#include "loom/core/scalar.h"
#include "loom/core/shape.h"
#include "loom/core/storage.h"

namespace loom {

namespace autograd {
class Node;
struct AutogradMeta;
}  // namespace autograd

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape sizes;
  Shape strides;  // in elements
  DType dtype = DType::Float32;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null until autograd touches the tensor
  std::shared_ptr<TensorImpl> view_base;             // the non-view tensor this one views, or null
  // For views: the storage version when the view's autograd history was last set. When the storage has been
  // written in place since (through the base or another view), autograd rebuilds the view's history from the
  // base's current history, as PyTorch does, so the view's gradient flows through that write.
  uint64_t view_version = 0;
  // A Python number turned into a 0-d tensor for an op: it has the lowest priority in type promotion.
  bool wrapped_number = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor with uninitialised contents.
  static Tensor empty(const Shape& sizes, DType dtype, Device device = Device());
  // A view of `base`'s storage with the given geometry (bounds are checked against the storage).
  static Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);

  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return impl_->sizes; }
  const Shape& shape() const { return impl_->sizes; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->sizes.size()); }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t numel() const { return loom::numel(impl_->sizes); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  int64_t offset() const { return impl_->offset; }
  size_t itemsize() const { return loom::itemsize(impl_->dtype); }
  bool is_contiguous() const;
  bool is_view() const { return impl_->view_base != nullptr; }
  // The tensor this one is a view of, or an undefined tensor.
  Tensor base() const { return Tensor(impl_->view_base); }

  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  // Address of element [0, 0, ...] (storage data + offset).
  void* data_ptr() const;
  template <class T>
  T* data() const { return static_cast<T*>(data_ptr()); }

  // Version counter (shared by all views); see Storage::version.
  uint64_t version() const { return impl_->storage->version(); }
  void bump_version() const { impl_->storage->bump_version(); }

  // This tensor when it is on the CPU; otherwise a host copy with the same sizes, strides and values (a synchronous
  // copy of the storage span it reaches). For reading values on the host: printing, item(), NumPy, files.
  Tensor to_host() const;
  // The single element as a Python-like number (copied from the device); raises ValueError unless numel() == 1.
  Scalar item() const;
  std::string str() const;  // tensor([...], dtype=...) like PyTorch's repr
  // The same with more suffixes after size=/dtype=/device= (the Python repr adds grad_fn=...).
  std::string str(const std::vector<std::string>& extra_suffixes) const;

  // --- autograd (implemented in autograd/tensor_autograd.cpp) ---
  bool requires_grad() const;
  // Marks a leaf as requiring grad; raises for non-floating dtypes and for non-leaves asked to stop.
  Tensor& set_requires_grad(bool requires_grad);
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  std::shared_ptr<autograd::Node> grad_fn() const;
  int64_t output_nr() const;
  bool is_leaf() const;
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  // A tensor sharing storage with this one but with no autograd history (and not an autograd view of the base).
  Tensor detach() const;
  // Keeps .grad for a non-leaf after backward.
  void retain_grad() const;
  bool retains_grad() const;
  // A hook sees the gradient w.r.t. this tensor and may return a replacement (or an undefined tensor to keep it).
  // Returns a handle for remove_hook.
  int64_t register_hook(std::function<Tensor(const Tensor&)> hook) const;
  void remove_hook(int64_t handle) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace loom
