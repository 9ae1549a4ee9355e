// safetensors_hpp._core: an open file (one file, an index or a folder, or bytes) and what
// safe_open asks of it: keys, metadata, tensors, slices, GPU uploads.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <safetensors/safetensors.hpp>

#if defined(SAFETENSORS_PY_CUDA)
#include <safetensors/cuda.hpp>
#endif

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"

namespace safetensors_py {

namespace py = pybind11;
namespace st = safetensors;

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
        if (st::detail::is_directory(path) || ends_with(path, ".json"))
            sharded_.emplace(st::open_sharded(path, options));
        else
            single_.emplace(st::open(path, options));
    }
    // A file held in a Python buffer (load(data)): copied once, with the GIL released, into
    // owned memory (huge pages for large files, not zero-filled first), then parsed.
    explicit handle(const py::buffer& data) {
        const py::buffer_info b = data.request();
        const std::size_t size = static_cast<std::size_t>(b.size) * static_cast<std::size_t>(b.itemsize);
        py::gil_scoped_release unlocked;
        st::detail::aligned_bytes bytes = st::detail::allocate_aligned(size);
        if (size != 0) std::memcpy(bytes.get(), b.ptr, size);
        single_.emplace(st::file::from_source(std::make_shared<st::detail::memory_source>(std::move(bytes), size, "buffer")));
    }

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
        return py::object(std::move(out));
    }

    bool is_index() const noexcept { return sharded_.has_value() && sharded_->is_index(); }

    // Throws tensor_not_found (with "did you mean") for an unknown name.
    st::tensor_view view(const std::string& name) const {
        st::tensor_view v = single_ ? single_->tensor(name) : sharded_->tensor(name);
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
        if (s.is_contiguous() && writable(*v.source()))
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
    // Every tensor through the CUDA loader, one pipeline per file (per shard of a checkpoint),
    // into buffers from allocate(bytes) -> device pointer.
    py::list load_cuda(int device, const py::function& allocate) const;
#endif

private:
    py::tuple raw_of(const st::tensor_view& v) const {
        const std::size_t size = st::detail::to_size(v.byte_size());
        if (writable(*v.source()))
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

    // True when the source's bytes may be handed out as writable arrays: made copy-on-write
    // writable once per source (a sharded checkpoint opens its shards as they are needed).
    // Where that fails (no mprotect), tensors are copied instead.
    bool writable(const st::source& src) const {
        std::lock_guard<std::mutex> lock(mutex_);
        auto [at, inserted] = writable_.emplace(&src, false);
        if (inserted) at->second = make_writable(src);
        return at->second;
    }

    std::optional<st::file> single_;
    std::optional<st::sharded_file> sharded_;
    mutable std::mutex mutex_;
    mutable std::map<const st::source*, bool> writable_;
};

#if defined(SAFETENSORS_PY_CUDA)
// One loader per device, made on first use (its pinned ring and stream are reused).
st::cuda::loader& loader_for(int device) {
    // Never destroyed: at interpreter exit the CUDA runtime may already be torn down, and a
    // loader's destructor would synchronize on events of a dead context.
    static std::mutex mutex;
    static auto* loaders = new std::map<int, std::unique_ptr<st::cuda::loader>>();
    std::lock_guard<std::mutex> lock(mutex);
    std::unique_ptr<st::cuda::loader>& l = (*loaders)[device];
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
    // Ordered on torch's current stream like any torch op, so no wait: when this returns, the
    // bytes are in the pinned ring and their copies queued; later work on the stream sees them.
    if (s)
        (void)gpu.upload(*s, to, on);
    else
        (void)gpu.upload(v, to, on);
}

py::list handle::load_cuda(int device, const py::function& allocate) const {
    // One pipeline per file: the file, or each shard of a checkpoint in turn, each into one
    // arena from allocate (torch's caching allocator owns it; the callback takes the GIL).
    struct part {
        st::device_tensor_map tensors;
        std::uintptr_t arena = 0;
        int index = -1;  // which allocate() call made the arena; -1: nothing to allocate
    };
    std::vector<part> parts(single_ ? 1 : sharded_->shard_count());
    {
        py::gil_scoped_release unlocked;
        st::cuda::loader& gpu = loader_for(device);
        int arenas = 0;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            part& p = parts[i];
            const st::file& f = single_ ? *single_ : sharded_->shard(i);
            p.tensors = gpu.load_into(f, [&allocate, &p, &arenas](std::uint64_t bytes) -> std::shared_ptr<void> {
                py::gil_scoped_acquire locked;
                p.arena = allocate(bytes).cast<std::uintptr_t>();
                p.index = arenas++;
                return std::shared_ptr<void>(reinterpret_cast<void*>(p.arena), [](void*) {});
            });
        }
    }
    // [(name, arena index, offset, bytes, dtype, shape)] in file (or weight_map) order.
    py::list out;
    for (const std::string_view name : single_ ? single_->keys() : sharded_->keys()) {
        const part& p = parts[single_ ? 0 : sharded_->shard_of(name)];
        const auto found = p.tensors.find(name);
        if (found == p.tensors.end()) (void)sharded_->tensor(name);  // throws index_mismatch, naming the shard
        const st::device_tensor& t = found->second;
        const auto at = reinterpret_cast<std::uintptr_t>(t.data);
        const std::size_t offset = t.byte_size == 0 || at < p.arena ? 0 : static_cast<std::size_t>(at - p.arena);
        out.append(py::make_tuple(py::str(name.data(), name.size()), t.byte_size == 0 ? -1 : p.index, offset,
                                  t.byte_size, dtype_name(t.dtype), shape_tuple(t.shape)));
    }
    return out;
}
#endif

} // namespace safetensors_py
