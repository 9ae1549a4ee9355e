// safetensors_hpp._core: serialize, serialize_file (the writer over tensors' own memory) and
// deserialize.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/safetensors.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"

namespace safetensors_py {

namespace py = pybind11;
namespace st = safetensors;

// ---------------------------------------------------------------------------------------------
// Writing: [(name, dtype, shape, data)], data a buffer (bytes, a NumPy array) or an
// (address, size) pair of memory the caller keeps alive (a torch tensor).
// ---------------------------------------------------------------------------------------------
struct write_input {
    std::vector<st::tensor_ref> refs;
    std::vector<py::buffer_info> buffers;  // keep the buffers' exports alive
    std::optional<st::metadata_map> metadata;
};

st::dtype dtype_of(const std::string& name) {
    if (auto t = st::parse_dtype(name)) return *t;
    if (auto t = st::from_torch_name(name)) return *t;
    if (name == "bool_") return st::dtype::BOOL;  // NumPy's spelling
    st::detail::throw_error(st::errc::unknown_dtype, "dtype " + name + " is not covered");
}

write_input to_write_input(const py::list& tensors, const py::object& metadata) {
    write_input in;
    in.refs.reserve(tensors.size());
    in.buffers.reserve(tensors.size());
    for (const py::handle item : tensors) {
        const py::tuple t = py::reinterpret_borrow<py::tuple>(item);
        const std::string name = t[0].cast<std::string>();
        const st::dtype type = dtype_of(t[1].cast<std::string>());
        std::vector<std::uint64_t> shape;
        for (const py::handle d : t[2]) shape.push_back(d.cast<std::uint64_t>());
        const py::object data = t[3];
        const void* at = nullptr;
        std::uint64_t size = 0;
        if (py::isinstance<py::tuple>(data)) {
            const py::tuple pair = py::reinterpret_borrow<py::tuple>(data);
            at = reinterpret_cast<const void*>(pair[0].cast<std::uintptr_t>());
            size = pair[1].cast<std::uint64_t>();
        } else {
            in.buffers.push_back(py::reinterpret_borrow<py::buffer>(data).request());
            const py::buffer_info& b = in.buffers.back();
            at = b.ptr;
            size = static_cast<std::uint64_t>(b.size) * static_cast<std::uint64_t>(b.itemsize);
        }
        in.refs.emplace_back(name, type, shape, at, size);
    }
    if (!metadata.is_none()) {
        in.metadata.emplace();
        for (const auto& [key, value] : metadata.cast<py::dict>())
            in.metadata->insert(key.cast<std::string>(), value.cast<std::string>());
    }
    return in;
}

py::bytes serialize(const py::list& tensors, const py::object& metadata) {
    const write_input in = to_write_input(tensors, metadata);
    const st::span<const st::tensor_ref> refs(in.refs);
    const st::detail::write_plan plan = st::detail::plan_for(refs, in.metadata ? &*in.metadata : nullptr, {});
    const std::uint64_t total = plan.data_offset() + plan.data_size;
    // The bytes object is filled in place: the file is built once, not built then copied.
    PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(total));
    if (out == nullptr) throw py::error_already_set();
    py::bytes result = py::reinterpret_steal<py::bytes>(out);
    auto* at = reinterpret_cast<std::byte*>(PyBytes_AS_STRING(out));
    std::memcpy(at, plan.head.data(), plan.head.size());
    {
        py::gil_scoped_release unlocked;
        st::detail::copy_tensors(refs, plan, at);
    }
    return result;
}

void serialize_file(const py::list& tensors, const std::string& path, const py::object& metadata) {
    const write_input in = to_write_input(tensors, metadata);
    st::write_options options;
    options.sync = false;  // as the reference (and f.write): no fsync; the replace is still atomic
    py::gil_scoped_release unlocked;
    st::save(path, st::tensor_list(st::span<const st::tensor_ref>(in.refs)), in.metadata ? &*in.metadata : nullptr,
             options);
}

// The reference's deserialize(bytes): [(name, {"shape", "dtype", "data": bytearray})], file order.
py::list deserialize(const py::buffer& data) {
    const py::buffer_info b = data.request();
    const std::size_t size = static_cast<std::size_t>(b.size) * static_cast<std::size_t>(b.itemsize);
    std::optional<st::file> f;
    {
        py::gil_scoped_release unlocked;
        f.emplace(st::file::from_buffer(b.ptr, size));
    }
    // The bytearrays are made empty-handed with the GIL, then filled without it.
    py::list out;
    std::vector<std::pair<char*, st::tensor_view>> copies;
    for (const st::tensor_view& v : *f) {
        py::object bytes = py::reinterpret_steal<py::object>(
            PyByteArray_FromStringAndSize(nullptr, static_cast<py::ssize_t>(v.byte_size())));
        if (!bytes) throw py::error_already_set();
        copies.emplace_back(PyByteArray_AS_STRING(bytes.ptr()), v);
        py::dict entry;
        entry["shape"] = py::list(shape_tuple(v.shape()));
        entry["dtype"] = dtype_name(v.dtype());
        entry["data"] = bytes;
        out.append(py::make_tuple(py::str(std::string(v.name())), entry));
    }
    py::gil_scoped_release unlocked;
    for (const auto& [to, v] : copies)
        if (v.byte_size() != 0) std::memcpy(to, v.data(), st::detail::to_size(v.byte_size()));
    return out;
}

} // namespace safetensors_py
