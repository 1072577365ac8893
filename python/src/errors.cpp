// Maps loom::Error kinds onto Python exception classes.
#include <typeinfo>

#include "convert.h"

namespace loom::python {

void bind_errors(nb::module_& m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const loom::Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case ErrorKind::Value: type = PyExc_ValueError; break;
        case ErrorKind::Type: type = PyExc_TypeError; break;
        case ErrorKind::Index: type = PyExc_IndexError; break;
        case ErrorKind::NotImplemented: type = PyExc_NotImplementedError; break;
        case ErrorKind::Runtime: type = PyExc_RuntimeError; break;
      }
      PyErr_SetString(type, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "loom: out of memory");
    } catch (const std::bad_cast&) {
      // nb::cast failures (nb::cast_error derives from std::bad_cast) that no binding caught with cast_arg,
      // which names the op and the argument. std::bad_cast's own text is just "std::bad_cast".
      PyErr_SetString(PyExc_TypeError, "loom: an argument has an unsupported type (it could not be converted to the "
                                       "type the function expects)");
    } catch (const std::length_error& e) {
      // std::vector's "cannot create std::vector larger than max_size()" and the like: a size that is too large.
      PyErr_SetString(PyExc_ValueError, (std::string("loom: a requested size is too large (") + e.what() + ")").c_str());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    }
  });
}

}  // namespace loom::python
