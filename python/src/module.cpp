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
// One translation unit on purpose: it is the whole compile cost of the module.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/safetensors.hpp>
#include <safetensors/version.hpp>

#if defined(SAFETENSORS_PY_CUDA)
#include <safetensors/cuda.hpp>
#endif

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;
namespace st = safetensors;

namespace {

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
error_types errors;

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

bool is_directory(const std::string& path) {
    struct stat s {};
    return ::stat(path.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------------------------
// An open file: one .safetensors file, an index (model.safetensors.index.json) or a checkpoint
// folder; or bytes held in memory (load(data)).
// ---------------------------------------------------------------------------------------------
class handle {
public:
    // populate: fault the whole mapping in at open (load_file, which touches every byte).
    handle(const std::string& path, bool populate) {
        st::open_options options;
        options.populate = populate;
        py::gil_scoped_release unlocked;
        if (is_directory(path) || ends_with(path, ".json"))
            sharded_.emplace(st::open_sharded(path, options));
        else
            single_.emplace(st::open(path, options));
    }
    explicit handle(std::vector<std::byte> bytes) : single_(st::file::from_bytes(std::move(bytes))) {}

    py::list keys(bool sorted) const {
        const std::vector<std::string_view> names =
            single_ ? (sorted ? single_->sorted_keys() : single_->keys()) : (sorted ? sharded_->sorted_keys() : sharded_->keys());
        py::list out(names.size());
        for (std::size_t i = 0; i < names.size(); ++i) out[i] = py::str(names[i].data(), names[i].size());
        return out;
    }

    py::object metadata() const {
        const st::metadata_map* meta = single_ ? single_->metadata() : sharded_->metadata();
        if (meta == nullptr) return py::none();
        py::dict out;
        for (const auto& [key, value] : *meta) out[py::str(key)] = py::str(value);
        return std::move(out);
    }

    bool is_index() const noexcept { return sharded_.has_value() && sharded_->is_index(); }

    // Throws tensor_not_found (with "did you mean") for an unknown name.
    st::tensor_view view(const std::string& name) const {
        st::tensor_view v = single_ ? single_->tensor(name) : sharded_->tensor(name);
        writable(*v.source());
        return v;
    }

    py::tuple info(const std::string& name) const {
        const st::tensor_view v = single_ ? single_->tensor(name) : sharded_->tensor(name);
        return py::make_tuple(dtype_name(v.dtype()), shape_tuple(v.shape()));
    }

    // (dtype name, shape, bytes) of a tensor (items None) or of a slice of it, before reading.
    py::tuple plan(const std::string& name, const py::object& items) const {
        const st::tensor_view v = single_ ? single_->tensor(name) : sharded_->tensor(name);
        if (items.is_none()) return py::make_tuple(dtype_name(v.dtype()), shape_tuple(v.shape()), v.byte_size());
        const st::tensor_slice s = v.slice(to_spec(py::reinterpret_borrow<py::list>(items)));
        return py::make_tuple(dtype_name(s.dtype()), shape_tuple(s.shape()), s.byte_size());
    }

    // (array over the tensor's bytes, dtype name, shape): no copy.
    py::tuple raw(const std::string& name) const { return raw_of(view(name)); }

    // Every tensor as raw() gives it, in file order, in one call (load_file).
    py::list raw_all() const {
        const std::vector<std::string_view> names = single_ ? single_->keys() : sharded_->keys();
        py::list out(names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
            const std::string name(names[i]);
            out[i] = py::make_tuple(py::str(name), raw_of(view(name)));
        }
        return out;
    }

    // A slice (torch/NumPy basic indexing; items are ints, (start, stop, step) tuples with None
    // for an open end, or Ellipsis): one run is handed out without copying, several are packed
    // into a new array with the GIL released, reading only the pages the runs cover.
    py::tuple slice(const std::string& name, const py::list& items) const {
        const st::tensor_view v = view(name);
        const st::tensor_slice s = v.slice(to_spec(items));
        if (s.is_contiguous() && v.source()->addressable())
            return py::make_tuple(byte_array(s.byte_size() == 0 ? nullptr : s.data(), st::detail::to_size(s.byte_size()),
                                             v.keep_alive()),
                                  dtype_name(s.dtype()), shape_tuple(s.shape()));
        const std::size_t size = st::detail::to_size(s.byte_size());
        auto [array, at] = new_byte_array(size);
        {
            py::gil_scoped_release unlocked;
            s.copy_to(at, size);
        }
        return py::make_tuple(array, dtype_name(s.dtype()), shape_tuple(s.shape()));
    }

#if defined(SAFETENSORS_PY_CUDA)
    // One tensor or slice into device memory the caller (torch) allocated, on its stream.
    void upload(const std::string& name, const py::object& items, int device, std::uintptr_t destination,
                std::uintptr_t stream) const;
    // Every tensor through one pipeline into one buffer from allocate(bytes) -> device pointer;
    // returns [(name, offset, dtype, shape)] in file order.
    py::list load_cuda(int device, const py::function& allocate) const;
#endif

private:
    py::tuple raw_of(const st::tensor_view& v) const {
        const std::size_t size = st::detail::to_size(v.byte_size());
        if (v.source()->addressable())
            return py::make_tuple(byte_array(size == 0 ? nullptr : v.data(), size, v.keep_alive()), dtype_name(v.dtype()),
                                  shape_tuple(v.shape()));
        auto [array, at] = new_byte_array(size);
        {
            py::gil_scoped_release unlocked;
            v.copy_to(st::span<std::byte>(at, size));
        }
        return py::make_tuple(array, dtype_name(v.dtype()), shape_tuple(v.shape()));
    }

    static st::detail::slice_integer integer_of(const py::handle& h) {
        if (h.is_none()) return std::nullopt;
        return st::detail::slice_integer(h.cast<long long>());
    }

    static st::slice_spec to_spec(const py::list& items) {
        st::slice_spec spec;
        spec.reserve(items.size());
        for (const py::handle item : items) {
            if (item.ptr() == Py_Ellipsis) {
                spec.emplace_back(st::ellipsis);
            } else if (py::isinstance<py::tuple>(item)) {
                const py::tuple t = py::reinterpret_borrow<py::tuple>(item);
                spec.emplace_back(st::range(integer_of(t[0]), integer_of(t[1]), integer_of(t[2])));
            } else {
                spec.emplace_back(item.cast<long long>());
            }
        }
        return spec;
    }

    // Once per source (a sharded checkpoint opens its shards as they are needed).
    void writable(const st::source& src) const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (writable_.insert(&src).second) make_writable(src);
    }

    std::optional<st::file> single_;
    std::optional<st::sharded_file> sharded_;
    mutable std::mutex mutex_;
    mutable std::set<const st::source*> writable_;
};

#if defined(SAFETENSORS_PY_CUDA)
// One loader per device, made on first use (its pinned ring and stream are reused).
st::cuda::loader& loader_for(int device) {
    static std::mutex mutex;
    static std::map<int, std::unique_ptr<st::cuda::loader>> loaders;
    std::lock_guard<std::mutex> lock(mutex);
    std::unique_ptr<st::cuda::loader>& l = loaders[device];
    if (!l) l = std::make_unique<st::cuda::loader>(device);
    return *l;
}

void handle::upload(const std::string& name, const py::object& items, int device, std::uintptr_t destination,
                    std::uintptr_t stream) const {
    const st::tensor_view v = view(name);
    std::optional<st::tensor_slice> s;
    if (!items.is_none()) s.emplace(v.slice(to_spec(py::reinterpret_borrow<py::list>(items))));
    py::gil_scoped_release unlocked;
    st::cuda::loader& gpu = loader_for(device);
    auto* to = reinterpret_cast<void*>(destination);
    auto* on = reinterpret_cast<cudaStream_t>(stream);
    if (s)
        gpu.upload(*s, to, on).wait();
    else
        gpu.upload(v, to, on).wait();
}

py::list handle::load_cuda(int device, const py::function& allocate) const {
    if (!single_) st::detail::throw_error(st::errc::invalid_argument, "load_file to a GPU takes one .safetensors file");
    st::device_tensor_map tensors;
    std::uintptr_t arena = 0;
    {
        py::gil_scoped_release unlocked;
        st::cuda::loader& gpu = loader_for(device);
        // The arena comes from torch (its caching allocator owns it): the callback takes the GIL.
        tensors = gpu.load_into(*single_, [&allocate, &arena](std::uint64_t bytes) -> std::shared_ptr<void> {
            py::gil_scoped_acquire locked;
            arena = allocate(bytes).cast<std::uintptr_t>();
            return std::shared_ptr<void>(reinterpret_cast<void*>(arena), [](void*) {});
        });
    }
    py::list out;
    for (const std::string_view name : single_->keys()) {
        const st::device_tensor& t = tensors.at(std::string(name));
        const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(t.data);
        const std::size_t offset = t.byte_size == 0 || at < arena ? 0 : static_cast<std::size_t>(at - arena);
        out.append(py::make_tuple(py::str(name.data(), name.size()), offset, t.byte_size, dtype_name(t.dtype),
                                  shape_tuple(t.shape)));
    }
    return out;
}
#endif

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

std::vector<std::byte> copy_of(const py::buffer& data) {
    const py::buffer_info b = data.request();
    const std::size_t size = static_cast<std::size_t>(b.size) * static_cast<std::size_t>(b.itemsize);
    std::vector<std::byte> out(size);
    py::gil_scoped_release unlocked;
    if (size != 0) std::memcpy(out.data(), b.ptr, size);
    return out;
}

// The reference's deserialize(bytes): [(name, {"shape", "dtype", "data": bytearray})], file order.
py::list deserialize(const py::buffer& data) {
    const py::buffer_info b = data.request();
    const st::file f = st::file::from_buffer(b.ptr, static_cast<std::size_t>(b.size) * static_cast<std::size_t>(b.itemsize));
    py::list out;
    for (const st::tensor_view& v : f) {
        const auto size = static_cast<py::ssize_t>(v.byte_size());
        py::object bytes = py::reinterpret_steal<py::object>(
            PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(v.data()), size));
        if (!bytes) throw py::error_already_set();
        py::dict entry;
        entry["shape"] = py::list(shape_tuple(v.shape()));
        entry["dtype"] = dtype_name(v.dtype());
        entry["data"] = bytes;
        out.append(py::make_tuple(py::str(std::string(v.name())), entry));
    }
    return out;
}

} // namespace

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
    m.def("open_bytes", [](const py::buffer& data) { return std::make_unique<handle>(copy_of(data)); });
    m.def("serialize", &serialize, py::arg("tensors"), py::arg("metadata") = py::none());
    m.def("serialize_file", &serialize_file, py::arg("tensors"), py::arg("path"), py::arg("metadata") = py::none());
    m.def("deserialize", &deserialize);
}
