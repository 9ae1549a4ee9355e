// safetensors-hpp: loading tensors straight into CUDA device memory.
//
//   safetensors::cuda::loader gpu(0);                        // device 0, pinned staging ring
//   auto tensors = gpu.load_file("model.safetensors");       // name -> device_tensor
//   auto mine = gpu.load_parts(f, {{"w_q", 0}, {"w_o", 1}}, rank, world);  // tensor parallel
//   gpu.upload(f.tensor("w"), device_ptr, stream).wait();    // one tensor or slice, async
//
// The C++ form of safe_open(path, framework="pt", device=0). Optional: this header and the
// CUDA resource handles it builds on (cuda_resources.hpp, included here, so this one include
// gives both) are the only ones that include cuda_runtime.h, and the umbrella header includes
// neither. No kernels, so any C++17 compiler builds them given CUDA's include path and
// libcudart (CMake: safetensors::cuda); nvcc does too.
//
// How bytes travel: reader threads pread the file (source::read_at) into a bounded ring of
// pinned staging slots, while the calling thread queues cudaMemcpyAsync from each filled slot
// on a non-blocking stream, with an event per slot, so disk or page cache, PCIe and the CPU
// all work at once. Neither the mapping nor the page tables of the file are touched (a fresh
// mapping costs about 40 ms of page faults per GiB, more than a whole load at 50 GB/s).
// Every tensor goes into one device allocation (the arena), each 256-byte aligned; a slot
// holds an image of one range of the arena, so adjacent tensors, and any number of tiny ones,
// cost one transfer per slot.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/cuda_direct_io.hpp"
#include "detail/cuda_staging.hpp"
#include "cuda_resources.hpp"
#include "device_tensor.hpp"
#include "error.hpp"
#include "file.hpp"
#include "slice.hpp"
#include "source.hpp"
#include "view.hpp"

namespace safetensors::cuda {

// ---- Options, requests, results -----------------------------------------------------------------

// Called on the calling thread with the bytes handed to the GPU so far and the total, after
// every staging slot and once more when everything has arrived. Return false to cancel: the
// load stops, waits for the copies in flight, frees what it allocated and throws
// errc::cancelled.
using progress_callback = std::function<bool(std::uint64_t done, std::uint64_t total)>;

struct loader_options {
    // The pinned staging ring: allocated once per loader and never grown, whatever the file
    // size. Pinning takes time (once per loader), so the ring is only as large as needed to
    // keep reading and copying overlapped.
    std::size_t staging_bytes = std::size_t{64} << 20;
    // One slot of the ring, the unit of a read and of a transfer (rounded up to 4 KiB; at most
    // half the ring, so that reading and copying overlap). These defaults (4 MiB slots, a
    // 64 MiB ring, 8 threads, spinning waits) were the best of the settings sweep in 4 of 5
    // runs on H100 machines and on an H200 (bench/cuda/README.md).
    std::size_t chunk_bytes = std::size_t{4} << 20;
    // Reader threads: one pread copies at one core's memcpy speed, well below PCIe's, so it
    // takes several in parallel to keep the copy engine busy. 0: one per hardware thread.
    unsigned threads = 8;
    // load_file*(): read with O_DIRECT, for a cold page cache (Linux; file systems that refuse
    // O_DIRECT, like tmpfs, are read buffered).
    bool direct_io = false;
    // Runs of a strided slice (a column split) closer than this are read together, gap
    // included, and picked apart by cudaMemcpy2DAsync: one read per slot instead of one
    // pread per row. 0 (the default) reads exactly the selected bytes.
    std::size_t read_gap = 0;
    // How a reader thread waits for a staging slot whose copies are still in flight: true
    // sleeps until the driver signals the slot's event (cudaEventBlockingSync); false spins on
    // it, which answers a little sooner but keeps a core busy per waiting reader, taking it
    // from the readers that are copying (and from the rest of the process).
    bool blocking_wait = false;
};

// One tensor of a tensor-parallel load: its part along `dim` (negative counts from the end),
// or, without a dim, the whole tensor (replicated on every rank).
struct split_request {
    std::string name;
    std::optional<std::int64_t> dim;
};

// What the last operation of a loader did.
struct load_stats {
    std::uint64_t bytes = 0;       // tensor bytes delivered
    std::uint64_t read_bytes = 0;  // bytes read from the file (more with direct I/O or read_gap)
    std::uint64_t device_bytes = 0;  // size of the device allocation (tensors + alignment)
    std::size_t chunks = 0;        // staging slots filled
    std::size_t reads = 0;         // read_at / pread calls
    std::size_t copies = 0;        // cudaMemcpyAsync + cudaMemcpy2DAsync calls
    bool direct_io = false;
    // Where the time went. seconds: the whole call (for a load, from the open to the last copy
    // done; for an upload, until its copies are queued). Summed over reader threads: reading,
    // and waiting for a slot still being copied (much of it: the copies are the bottleneck).
    // issue_wait_seconds: the calling thread waiting for a filled slot (the reads are).
    double seconds = 0;
    double read_seconds = 0;
    double slot_wait_seconds = 0;
    double issue_wait_seconds = 0;
};

// An upload in flight. Dropping it is safe: when upload() returns every source byte has been
// read into the loader's pinned ring (a slot is reused only after its copies finished), so
// nothing of the source is needed any more; this only tells when the bytes have arrived.
class pending_upload {
public:
    pending_upload() = default;

    bool ready() const {
        if (!done_) return true;
        const cudaError_t status = cudaEventQuery(done_.get());
        if (status == cudaErrorNotReady) return false;
        check(status, "cudaEventQuery");
        return true;
    }
    void wait() const {
        if (done_) check(cudaEventSynchronize(done_.get()), "cudaEventSynchronize");
    }

private:
    friend class loader;
    explicit pending_upload(unique_event done) : done_(std::move(done)) {}
    unique_event done_;
};

// ---- The loader ---------------------------------------------------------------------------------

namespace staging = safetensors::detail::staging;

// Loads tensors to one device through one pinned staging ring. Create one per device and
// reuse it: the ring, its events and the stream are allocated once. Calls are serialized
// (one at a time per loader); loaders of different devices run in parallel.
class loader {
public:
    explicit loader(int device = 0, const loader_options& options = {}) : device_(device), options_(options) {
        if (options_.staging_bytes < 2 * min_chunk)
            safetensors::detail::throw_error(errc::invalid_argument, "loader: staging_bytes must be at least " +
                                                                         std::to_string(2 * min_chunk));
        // Whole 4 KiB pages (O_DIRECT wants aligned buffers), at least two slots.
        std::size_t chunk = std::max(options_.chunk_bytes, min_chunk);
        chunk = std::min(chunk, options_.staging_bytes / 2);
        chunk = (chunk + min_chunk - 1) / min_chunk * min_chunk;
        if (chunk > options_.staging_bytes / 2) chunk -= min_chunk;
        const std::size_t slots = options_.staging_bytes / chunk;
        if (options_.threads == 0) options_.threads = std::max(1u, std::thread::hardware_concurrency());
        options_.chunk_bytes = chunk;
        options_.staging_bytes = chunk * slots;

        device_scope scope(device_);
        stream_ = make_stream();
        pinned_ = make_pinned(options_.staging_bytes);
        const unsigned event_flags = cudaEventDisableTiming | (options_.blocking_wait ? cudaEventBlockingSync : 0u);
        for (std::size_t i = 0; i < slots; ++i) events_.push_back(make_event(event_flags));
        ring_.emplace(static_cast<std::byte*>(pinned_.get()), chunk, slots);
    }

    ~loader() {
        // Uploads may still be reading the ring: wait before it is unpinned and freed.
        int previous = 0;
        const bool switch_device = cudaGetDevice(&previous) == cudaSuccess && previous != device_;
        if (switch_device) (void)cudaSetDevice(device_);
        for (const auto& e : events_) (void)cudaEventSynchronize(e.get());
        if (switch_device) (void)cudaSetDevice(previous);
    }
    loader(const loader&) = delete;
    loader& operator=(const loader&) = delete;

    int device() const noexcept { return device_; }
    // The options in effect (chunk rounded, staging a whole number of chunks, threads set).
    const loader_options& options() const noexcept { return options_; }
    load_stats last_stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

    // -- One tensor or slice to caller-owned device memory, asynchronously --

    // Copies the tensor's bytes to destination (device memory of this loader's device, at least
    // byte_size() bytes) on `stream`: the copies are ordered after earlier work on the stream,
    // and later work sees the bytes. Returns once every byte has been read into the staging
    // ring and the copies are queued (so the source may go away at once).
    [[nodiscard]] pending_upload upload(const tensor_view& tensor, void* destination, cudaStream_t stream,
                                        const progress_callback& progress = {}) {
        std::vector<staging::piece> pieces{{tensor.source_offset(), 0, tensor.byte_size()}};
        return upload_pieces(*tensor.source(), std::move(pieces), {}, destination, stream, progress);
    }
    // The same for a slice or split: destination receives its bytes packed in row-major order
    // (slice.byte_size() bytes). Only the selected bytes are read and moved.
    [[nodiscard]] pending_upload upload(const tensor_slice& slice, void* destination, cudaStream_t stream,
                                        const progress_callback& progress = {}) {
        std::vector<staging::piece> dense, strided;
        add_slice_pieces(slice, 0, dense, strided);
        return upload_pieces(*slice.view().source(), std::move(dense), std::move(strided), destination, stream,
                             progress);
    }

    // -- Whole files, subsets, tensor-parallel parts: one arena per call --

    // Every tensor of f.
    device_tensor_map load(const file& f, const progress_callback& progress = {}) {
        std::vector<item> items;
        for (const tensor_view& v : f) items.push_back({v, std::nullopt});
        return load_items(f, std::move(items), nullptr, progress);
    }
    // The same into memory from allocate(bytes) (device memory of this loader's device, at
    // least that many bytes; 256-byte aligned keeps every tensor so): a framework's caching
    // allocator owns the tensors then (the Python module hands torch's). allocate is called
    // once, while the first reads run; the device_tensors share what it returns.
    using arena_allocator = std::function<std::shared_ptr<void>(std::uint64_t bytes)>;
    device_tensor_map load_into(const file& f, const arena_allocator& allocate, const progress_callback& progress = {}) {
        std::vector<item> items;
        for (const tensor_view& v : f) items.push_back({v, std::nullopt});
        return load_items(f, std::move(items), nullptr, progress, clock::now(), &allocate);
    }
    // The named tensors of f (errc::tensor_not_found for a missing one).
    device_tensor_map load(const file& f, const std::vector<std::string>& names, const progress_callback& progress = {}) {
        return load_items(f, named_items(f, names), nullptr, progress);
    }
    // Tensor parallel: split(dim, rank, world_size) of each requested tensor (see
    // safetensors::split_range), or the whole tensor for a request without a dim. Row parts
    // are one contiguous range of the file; column parts are read run by run (or, with
    // read_gap, in blocks picked apart by cudaMemcpy2DAsync); nothing else is read.
    device_tensor_map load_parts(const file& f, const std::vector<split_request>& requests, std::uint64_t rank,
                                  std::uint64_t world_size, const progress_callback& progress = {}) {
        return load_items(f, split_items(f, requests, rank, world_size), nullptr, progress);
    }

    // The same from a path, timed from the open: these also honour options().direct_io.
    device_tensor_map load_file(const std::string& path, const progress_callback& progress = {}) {
        const clock::time_point start = clock::now();  // timed from the open
        opened o = open_for_load(path);
        std::vector<item> items;
        for (const tensor_view& v : o.f) items.push_back({v, std::nullopt});
        return load_items(o.f, std::move(items), o.direct.get(), progress, start);
    }
    device_tensor_map load_file(const std::string& path, const std::vector<std::string>& names,
                                const progress_callback& progress = {}) {
        const clock::time_point start = clock::now();  // timed from the open
        opened o = open_for_load(path);
        return load_items(o.f, named_items(o.f, names), o.direct.get(), progress, start);
    }
    device_tensor_map load_file_parts(const std::string& path, const std::vector<split_request>& requests,
                                       std::uint64_t rank, std::uint64_t world_size,
                                       const progress_callback& progress = {}) {
        const clock::time_point start = clock::now();  // timed from the open
        opened o = open_for_load(path);
        return load_items(o.f, split_items(o.f, requests, rank, world_size), o.direct.get(), progress, start);
    }

private:
    static constexpr std::size_t min_chunk = 4096;  // also the O_DIRECT alignment
    static constexpr std::uint64_t arena_alignment = 256;

    // Where the OS layer has no O_DIRECT, a direct_file never opens and direct_io reads buffered.
    using direct_file = safetensors::detail::direct_file;
    static_assert(direct_file::alignment == min_chunk, "slots must be whole O_DIRECT blocks");

    struct item {
        tensor_view view;
        std::optional<tensor_slice> slice;
    };
    struct opened {
        file f;
        std::shared_ptr<const direct_file> direct;  // null: read buffered through f's source
    };

    // Issues copy_ops from a slot to device memory at `base` on `stream`, and records the
    // slot's event after them; reader threads wait on that event before refilling the slot.
    class copy_backend {
    public:
        copy_backend(int device, cudaStream_t stream, const std::vector<unique_event>& events)
            : device_(device), stream_(stream), events_(events) {}
        std::byte* base = nullptr;

        void issue(const staging::chunk& c, const std::byte* slot, std::size_t index) {
            for (const staging::copy_op& op : c.copies) {
                if (op.rows == 1)
                    check(cudaMemcpyAsync(base + op.dst, slot + op.slot_offset, op.width, cudaMemcpyHostToDevice, stream_),
                          "cudaMemcpyAsync");
                else
                    check(cudaMemcpy2DAsync(base + op.dst, static_cast<std::size_t>(op.dst_pitch), slot + op.slot_offset,
                                            op.slot_pitch, op.width, op.rows, cudaMemcpyHostToDevice, stream_),
                          "cudaMemcpy2DAsync");
            }
            check(cudaEventRecord(events_[index].get(), stream_), "cudaEventRecord");
        }
        void wait(std::size_t index) {
            check(cudaSetDevice(device_), "cudaSetDevice");  // reader threads start on device 0
            check(cudaEventSynchronize(events_[index].get()), "cudaEventSynchronize");
        }
        void drain() noexcept {
            // Copies of earlier uploads may be on other streams: wait for every slot, then for
            // anything queued on this stream after the last recorded event.
            for (const auto& e : events_) (void)cudaEventSynchronize(e.get());
            (void)cudaStreamSynchronize(stream_);
            (void)cudaGetLastError();
        }

    private:
        int device_;
        cudaStream_t stream_;
        const std::vector<unique_event>& events_;
    };

    static void add_slice_pieces(const tensor_slice& slice, std::uint64_t dst, std::vector<staging::piece>& dense,
                                 std::vector<staging::piece>& strided) {
        std::vector<staging::piece>& out = slice.is_contiguous() ? dense : strided;
        const std::uint64_t base = slice.view().source_offset();
        slice.for_each_run([&](std::uint64_t offset, std::uint64_t length) {
            out.push_back({base + offset, dst, length});
            dst += length;
        });
    }

    // slot_bytes: how much of a ring slot one chunk may fill (default: all of it).
    staging::plan make_plan(std::vector<staging::piece> dense, std::vector<staging::piece> strided, bool direct,
                            std::size_t slot_bytes = 0) const {
        if (slot_bytes == 0) slot_bytes = options_.chunk_bytes;
        const auto by_src = [](const staging::piece& a, const staging::piece& b) { return a.src < b.src; };
        const auto by_dst = [](const staging::piece& a, const staging::piece& b) { return a.dst < b.dst; };
        if (direct) {
            dense.insert(dense.end(), strided.begin(), strided.end());
            std::stable_sort(dense.begin(), dense.end(), by_src);
            return staging::block_plan(std::move(dense), slot_bytes, min_chunk);
        }
        if (options_.read_gap == 0 || strided.empty()) {
            dense.insert(dense.end(), strided.begin(), strided.end());
            std::stable_sort(dense.begin(), dense.end(), by_dst);
            return staging::gather_plan(std::move(dense), slot_bytes);
        }
        std::stable_sort(dense.begin(), dense.end(), by_dst);
        std::stable_sort(strided.begin(), strided.end(), by_src);
        staging::plan out = staging::gather_plan(std::move(dense), slot_bytes);
        staging::plan blocks = staging::block_plan(std::move(strided), slot_bytes, 1, options_.read_gap);
        out.payload += blocks.payload;
        for (auto& c : blocks.chunks) out.chunks.push_back(std::move(c));
        return out;
    }

    staging::reader make_reader(const source& src, const direct_file* direct) const {
        if (direct)
            return [direct](std::uint64_t offset, void* destination, std::size_t length) {
                direct->read_aligned(offset, destination, length);
            };
        return [&src](std::uint64_t offset, void* destination, std::size_t length) {
            src.read_at(offset, destination, length);
        };
    }

    using clock = std::chrono::steady_clock;

    void record_stats(const staging::plan& work, std::uint64_t device_bytes, bool direct, clock::time_point start,
                      const staging::timings& t) {
        stats_ = {work.payload,
                  work.read_bytes(),
                  device_bytes,
                  work.chunks.size(),
                  work.read_count(),
                  work.copy_count(),
                  direct,
                  std::chrono::duration<double>(clock::now() - start).count(),
                  t.read_seconds,
                  t.slot_wait_seconds,
                  t.issue_wait_seconds};
    }

    // One upload is one tensor or slice, often a few MiB: in whole-slot chunks it would be read
    // by two or three threads, each at one core's memcpy speed (get_tensor to a GPU ran at
    // 0.17x pinned bandwidth so). Chunks of about payload / (threads - 2) give every reader a
    // part (the first three chunks ramp up: 1/8, 1/4, 1/2 of this); the ring is unchanged.
    std::size_t upload_chunk_bytes(std::uint64_t payload) const {
        constexpr std::uint64_t smallest = 256 * 1024;  // below this, a thread costs more than it reads
        if (options_.threads <= 2) return options_.chunk_bytes;
        std::uint64_t bytes = payload / (options_.threads - 2);
        bytes = std::max<std::uint64_t>((bytes + min_chunk - 1) / min_chunk * min_chunk, smallest);
        return static_cast<std::size_t>(std::min<std::uint64_t>(bytes, options_.chunk_bytes));
    }

    pending_upload upload_pieces(const source& src, std::vector<staging::piece> dense,
                                 std::vector<staging::piece> strided, void* destination, cudaStream_t stream,
                                 const progress_callback& progress) {
        const clock::time_point start = clock::now();
        std::lock_guard<std::mutex> lock(mutex_);
        device_scope scope(device_);
        std::uint64_t payload = 0;
        for (const auto* pieces : {&dense, &strided})
            for (const staging::piece& p : *pieces) payload += p.length;
        const staging::plan work = make_plan(std::move(dense), std::move(strided), false, upload_chunk_bytes(payload));
        if (work.payload != 0 && destination == nullptr)
            safetensors::detail::throw_error(errc::invalid_argument, "upload: null destination");
        copy_backend backend(device_, stream, events_);
        backend.base = static_cast<std::byte*>(destination);
        staging::pipeline<copy_backend> pipe(work, *ring_, make_reader(src, nullptr), backend, options_.threads);
        pipe.run(progress);
        unique_event done = make_event();
        check(cudaEventRecord(done.get(), stream), "cudaEventRecord");
        record_stats(work, 0, false, start, pipe.timings());
        return pending_upload(std::move(done));
    }

    // Where each item goes in the one device allocation, and the pieces that take it there.
    struct arena_layout {
        std::vector<std::uint64_t> offsets;  // one per item, each arena_alignment aligned
        std::vector<staging::piece> dense, strided;
        std::uint64_t size = 0;
    };

    static arena_layout lay_out(const std::vector<item>& items) {
        arena_layout out;
        for (const item& it : items) {
            out.size = (out.size + arena_alignment - 1) / arena_alignment * arena_alignment;
            out.offsets.push_back(out.size);
            if (it.slice) {
                add_slice_pieces(*it.slice, out.size, out.dense, out.strided);
                out.size += it.slice->byte_size();
            } else {
                out.dense.push_back({it.view.source_offset(), out.size, it.view.byte_size()});
                out.size += it.view.byte_size();
            }
        }
        if (!safetensors::detail::fits_size_t(out.size))
            safetensors::detail::throw_error(errc::file_too_large, "loader: " + std::to_string(out.size) +
                                                                       " bytes do not fit in the address space");
        return out;
    }

    device_tensor_map load_items(const file& f, std::vector<item> items, const direct_file* direct,
                                 const progress_callback& progress, clock::time_point start = clock::now(),
                                 const arena_allocator* allocate = nullptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        device_scope scope(device_);

        // File order: the reads sweep the file forwards, and the arena mirrors the file, so
        // neighbours in the file are neighbours on the device (one transfer for both).
        std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) {
            return a.view.source_offset() < b.view.source_offset();
        });
        arena_layout layout = lay_out(items);

        const staging::plan work =
            make_plan(std::move(layout.dense), std::move(layout.strided), direct != nullptr);
        copy_backend backend(device_, stream_.get(), events_);
        // The readers start now, so the device allocation below overlaps the first reads.
        staging::pipeline<copy_backend> pipe(work, *ring_, make_reader(*f.source(), direct), backend, options_.threads);
        std::shared_ptr<void> arena;
        if (layout.size != 0 && allocate != nullptr) {
            arena = (*allocate)(layout.size);
            if (!arena) safetensors::detail::throw_error(errc::invalid_argument, "loader: the arena allocator returned null");
        } else if (layout.size != 0) {
            unique_device_memory memory = make_device_memory(device_, detail::to_size(layout.size));
            arena = std::shared_ptr<void>(memory.get(), memory.get_deleter());
            memory.release();  // the shared_ptr owns it now (its constructor frees it if it throws)
        }
        backend.base = static_cast<std::byte*>(arena.get());
        pipe.run(progress);
        check(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize");
        if (progress && !progress(work.payload, work.payload))
            safetensors::detail::throw_error(errc::cancelled, "cancelled by the progress callback after " +
                                                                  std::to_string(work.payload) + " of " +
                                                                  std::to_string(work.payload) + " bytes");
        record_stats(work, layout.size, direct != nullptr, start, pipe.timings());
        return device_tensors(items, layout.offsets, arena);
    }

    // The result map: every tensor points into the arena and shares its ownership.
    device_tensor_map device_tensors(const std::vector<item>& items, const std::vector<std::uint64_t>& offsets,
                                     const std::shared_ptr<void>& arena) const {
        device_tensor_map out;
        for (std::size_t i = 0; i < items.size(); ++i) {
            const item& it = items[i];
            device_tensor t;
            t.name = std::string(it.view.name());
            t.dtype = it.view.dtype();
            const span<const std::uint64_t> shape = it.slice ? it.slice->shape() : it.view.shape();
            t.shape.assign(shape.begin(), shape.end());
            t.device = device_;
            t.data = arena ? static_cast<std::byte*>(arena.get()) + offsets[i] : nullptr;
            t.byte_size = it.slice ? it.slice->byte_size() : it.view.byte_size();
            t.owner = arena;
            out.emplace(t.name, std::move(t));
        }
        return out;
    }

    static std::vector<item> named_items(const file& f, const std::vector<std::string>& names) {
        std::vector<item> items;
        for (const std::string& name : names) items.push_back({f.tensor(name), std::nullopt});
        reject_duplicates(items);
        return items;
    }

    static std::vector<item> split_items(const file& f, const std::vector<split_request>& requests,
                                         std::uint64_t rank, std::uint64_t world_size) {
        std::vector<item> items;
        for (const split_request& r : requests) {
            tensor_view v = f.tensor(r.name);
            if (r.dim)
                items.push_back({v, v.split(*r.dim, rank, world_size)});
            else
                items.push_back({v, std::nullopt});
        }
        reject_duplicates(items);
        return items;
    }

    // Each tensor becomes one entry of the result map: asking twice is a mistake.
    static void reject_duplicates(const std::vector<item>& items) {
        std::vector<std::string_view> names;
        for (const item& it : items) names.push_back(it.view.name());
        std::sort(names.begin(), names.end());
        const auto twice = std::adjacent_find(names.begin(), names.end());
        if (twice != names.end())
            safetensors::detail::throw_error(errc::invalid_argument,
                                             "tensor " + safetensors::detail::quote(*twice) + " is requested twice");
    }

    opened open_for_load(const std::string& path) const {
        if (safetensors::detail::os::has_direct_io && options_.direct_io) {
            auto direct = std::make_shared<const direct_file>(path);
            if (direct->is_open())
                return {file::from_source(std::make_shared<safetensors::detail::direct_source>(direct)), direct};
        }
        return {safetensors::open(path), nullptr};
    }

    int device_;
    loader_options options_;
    mutable std::mutex mutex_;
    unique_stream stream_;
    unique_pinned pinned_;
    std::vector<unique_event> events_;  // one per slot: its last copies
    std::optional<staging::ring> ring_;
    load_stats stats_;
};

// Python's safetensors.torch.load_file(path, device="cuda:N"): every tensor of a file in
// one allocation on a device. One-shot; keep a loader to load several files.
inline device_tensor_map load_file(const std::string& path, int device = 0, const loader_options& options = {}) {
    loader gpu(device, options);
    return gpu.load_file(path);
}

} // namespace safetensors::cuda
