// Bindings for this family are filled in by its op family (see docs/ops.md).
#include "convert.h"

namespace loom::python {

void bind_sort(nb::module_& m, nb::class_<Tensor>& cls) {}

}  // namespace loom::python
