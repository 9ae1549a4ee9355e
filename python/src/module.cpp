// safetensors_hpp._core: the C++ half of the Python module (the Python half, in
// python/safetensors_hpp/, turns what this returns into torch tensors and NumPy arrays).
//
// Everything leaves here as a NumPy uint8 array over the bytes plus the dtype name and shape;
// the Python side reinterprets it (view(dtype).reshape(shape)), which copies nothing. What
// copies, and why:
//   - get_tensor, load_file, a slice that is one run of the file: nothing. The array points into
//     the file's private (copy-on-write) mapping: writes stay in this process, never reach the
//     file, and the array's base object keeps the mapping alive after the file object is gone.
//   - a slice of several runs: its bytes, once, packed into a new array (GIL released).
//   - load(bytes), deserialize: the input once (bytes objects are immutable).
//   - save/serialize: the tensors once, into the file or the returned bytes (GIL released).
// One translation unit on purpose (it is the whole compile cost of the module): the parts are
// headers included only here (errors.hpp, arrays.hpp, handle.hpp, write.hpp).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/version.hpp>

#include <memory>

#include "arrays.hpp"
#include "errors.hpp"
#include "handle.hpp"
#include "write.hpp"

namespace py = pybind11;
using namespace safetensors_py;

PYBIND11_MODULE(_core, m) {
    m.doc() = "safetensors-hpp core (C++): open, slice, serialize";
    m.attr("__version__") = SAFETENSORS_VERSION_STRING;
#if defined(SAFETENSORS_PY_CUDA)
    m.attr("has_cuda") = true;
#else
    m.attr("has_cuda") = false;
#endif

    errors.base = PyErr_NewExceptionWithDoc("safetensors_hpp.SafetensorError",
                                            "Custom Python Exception for Safetensor errors (.code: the C++ errc).",
                                            PyExc_Exception, nullptr);
    const auto derived = [](const char* name, PyObject* builtin) {
        py::tuple bases = py::make_tuple(py::handle(errors.base), py::handle(builtin));
        return PyErr_NewException(name, bases.ptr(), nullptr);
    };
    errors.not_found = derived("safetensors_hpp.SafetensorFileNotFoundError", PyExc_FileNotFoundError);
    errors.os_error = derived("safetensors_hpp.SafetensorOSError", PyExc_OSError);
    errors.index_error = derived("safetensors_hpp.SafetensorIndexError", PyExc_IndexError);
    m.add_object("SafetensorError", py::handle(errors.base));
    m.add_object("SafetensorFileNotFoundError", py::handle(errors.not_found));
    m.add_object("SafetensorOSError", py::handle(errors.os_error));
    m.add_object("SafetensorIndexError", py::handle(errors.index_error));
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const st::error& e) {
            translate(e);
        }
    });

    py::class_<handle>(m, "Handle")
        .def(py::init<const std::string&, bool>(), py::arg("path"), py::arg("populate") = false)
        .def("keys", &handle::keys, py::arg("sorted"))
        .def("metadata", &handle::metadata)
        .def("is_index", &handle::is_index)
        .def("info", &handle::info)
        .def("plan", &handle::plan)
        .def("raw", &handle::raw)
        .def("raw_all", &handle::raw_all)
        .def("slice", &handle::slice)
#if defined(SAFETENSORS_PY_CUDA)
        .def("upload", &handle::upload)
        .def("load_cuda", &handle::load_cuda)
#endif
        ;
    m.def("open_bytes", [](const py::buffer& data) { return std::make_unique<handle>(data); });
    m.def("serialize", &serialize, py::arg("tensors"), py::arg("metadata") = py::none());
    m.def("serialize_file", &serialize_file, py::arg("tensors"), py::arg("path"), py::arg("metadata") = py::none());
    m.def("deserialize", &deserialize);
}
