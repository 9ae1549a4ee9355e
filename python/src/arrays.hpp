// safetensors_hpp._core: bytes out as NumPy uint8 arrays, shapes and dtype names, and the
// copy-on-write mapping that makes zero-copy tensors writable.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/safetensors.hpp>

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace safetensors_py {

namespace py = pybind11;
namespace st = safetensors;

// ---------------------------------------------------------------------------------------------
// Bytes out: a uint8 array over memory some owner keeps alive.
// ---------------------------------------------------------------------------------------------
py::array byte_array(const std::byte* data, std::size_t size, std::shared_ptr<const void> owner) {
    auto* keep = new std::shared_ptr<const void>(std::move(owner));
    py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
    // NumPy wants a non-null pointer even for 0 bytes.
    static const std::byte empty[1] = {};
    void* at = const_cast<std::byte*>(size == 0 ? empty : data);
    return py::array(py::dtype("uint8"), {static_cast<py::ssize_t>(size)}, {static_cast<py::ssize_t>(1)}, at, base);
}

// A fresh writable array of size bytes, and its first byte.
std::pair<py::array, std::byte*> new_byte_array(std::size_t size) {
    py::array_t<std::uint8_t> out(static_cast<py::ssize_t>(size));
    return {out, reinterpret_cast<std::byte*>(out.mutable_data())};
}

py::tuple shape_tuple(st::span<const std::uint64_t> shape) {
    py::tuple out(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) out[i] = py::int_(shape[i]);
    return out;
}

py::str dtype_name(st::dtype t) {
    const std::string_view s = st::to_string(t);
    return py::str(s.data(), s.size());
}

// Makes the pages of a source writable copy-on-write. The library maps files MAP_PRIVATE and
// read-only; adding PROT_WRITE to a private mapping needs no write access to the file, and the
// first write to a page copies it, so the file never changes. Owned buffers are writable
// already (the call is then a no-op on pages that are read-write).
bool make_writable(const st::source& src) {
#if defined(_WIN32)
    (void)src;
    return false;
#else
    if (!src.addressable() || src.size() == 0) return src.addressable();
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(src.data()) & ~(page - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(src.data()) + src.size() + page - 1) & ~(page - 1);
    return ::mprotect(reinterpret_cast<void*>(begin), end - begin, PROT_READ | PROT_WRITE) == 0;
#endif
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace safetensors_py
