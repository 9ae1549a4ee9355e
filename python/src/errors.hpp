// safetensors_hpp._core: SafetensorError and the C++ -> Python exception mapping.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/safetensors.hpp>

#include <string>

namespace safetensors_py {

namespace py = pybind11;
namespace st = safetensors;

// ---------------------------------------------------------------------------------------------
// Errors: SafetensorError (the reference's name) carries the C++ message and its code; the
// few cases where the reference raises a built-in type get a subclass of both, so either
// `except` clause catches them.
// ---------------------------------------------------------------------------------------------
struct error_types {
    PyObject* base = nullptr;        // SafetensorError(Exception)
    PyObject* not_found = nullptr;   // (SafetensorError, FileNotFoundError): open of a missing file
    PyObject* os_error = nullptr;    // (SafetensorError, OSError): other I/O failures
    PyObject* index_error = nullptr; // (SafetensorError, IndexError): slice index out of range
};
inline error_types errors;  // one TU: the module's exception types

PyObject* error_type_for(st::errc code) {
    switch (code) {
        case st::errc::file_not_found:
        case st::errc::permission_denied: return errors.not_found;  // the reference: FileNotFoundError
        case st::errc::io_error:
        case st::errc::not_regular_file:
        case st::errc::map_failed:
        case st::errc::write_failed: return errors.os_error;
        case st::errc::slice_out_of_range:
        case st::errc::invalid_slice: return errors.index_error;  // torch: IndexError
        default: return errors.base;
    }
}

// Raises type(message) with .code set (and .path, where the error names one).
void raise_with_code(PyObject* type, const std::string& message, int code, const std::string& path) {
    py::object instance = py::reinterpret_borrow<py::object>(type)(message);
    instance.attr("code") = code;
    instance.attr("path") = path.empty() ? py::none() : py::object(py::str(path));
    PyErr_SetObject(type, instance.ptr());
}

void translate(const st::error& e) {
    std::string message = e.message();
    const int code = static_cast<int>(e.code());
    if (code >= 200 && code < 300) message = "Error while deserializing header: " + message;  // the reference's prefix
    raise_with_code(error_type_for(e.code()), message, code, e.path());
}

} // namespace safetensors_py
