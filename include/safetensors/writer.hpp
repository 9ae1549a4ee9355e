// safetensors-hpp: writing safetensors files, byte-identical to the reference writer.
//
//   save(path, tensors, metadata, options)   a file, replaced atomically (Python's save_file)
//   serialize(tensors, metadata, options)    the same bytes in memory (Python's save)
//   save(path, file) / serialize(file)       all tensors and metadata of an opened file
//   is_canonical(file)                       whether writing the file back reproduces it
//   stream_writer (stream_writer.hpp)        declare tensors first, then supply their bytes in
//                                            chunks: O(header + chunk) memory
//
// Arguments: tensor_ref.hpp (tensor_ref, tensor_list, metadata_ref) and write_options.hpp; the
// plan that validates and lays out a file: detail/write_plan.hpp. This header also includes
// stream_writer.hpp, so including it gives every writer.
//
// Layout (docs "Writer"): tensors ordered by dtype in descending enum order, then by name
// bytewise; compact header JSON with __metadata__ first (keys in insertion order); the header
// padded with spaces so the data section starts at a multiple of 8 (or write_options::alignment).
// Everything is validated before the first byte is written, and every error is a
// safetensors::error.
//
// Files are never written in place: the bytes go to a new temporary file in the target's
// folder (random name, created exclusively, mode 0666 & ~umask), which is flushed (fsync) and
// renamed over the target, and the folder is synced. Readers see the old file or the new one.
// On any failure (a write error, a full disk, a file-size limit, an exception thrown by the
// caller while streaming) the temporary file is removed and the target is left as it was.
// The new file gets fresh permissions (the umask's), not the old target's. If the target is a
// symbolic link, the rename replaces the link itself with a regular file; the file the link
// pointed to is not changed (resolve the link first to write through it).
//
// Special targets, found with stat() (which follows links): a character device or a FIFO
// (/dev/stdout, a named pipe) is written straight through in file order, with no temporary
// file, rename or fsync, as cp and Python's save_file do (a FIFO waits for its reader; a
// reader that goes away raises SIGPIPE, as for any write); so is a regular file reached through
// /dev or /proc (/dev/stdout redirected to a file), truncated first. A block device, a directory or a
// socket is refused (errc::not_regular_file). Every error names the path (error::path()), and
// an OS failure keeps its errno (error::system_code()).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "detail/atomic_file.hpp"
#include "detail/checked.hpp"
#include "detail/staging_buffer.hpp"
#include "detail/write_plan.hpp"
#include "error.hpp"
#include "file.hpp"
#include "header_table.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"
#include "stream_writer.hpp"  // not used here: writer.hpp has always provided stream_writer
#include "tensor_ref.hpp"
#include "view.hpp"
#include "write_options.hpp"

namespace safetensors {

namespace detail {

// The plan of a write whose tensors carry their bytes (checked against dtype and shape).
inline write_plan plan_for(span<const tensor_ref> refs, const metadata_map* metadata, const write_options& options) {
    return make_plan(
        refs.size(),
        [&](std::size_t i) {
            const tensor_ref& r = refs[i];
            // Any non-null pointer says "has bytes": a view of a reader has no address.
            const void* bytes = r.has_bytes() ? static_cast<const void*>(&r) : nullptr;
            return tensor_spec{r.name(), r.dtype(), r.shape(), true, r.byte_size(), bytes};
        },
        metadata, options);
}

// Writes one tensor_ref's bytes at offset: large ones straight from their memory, small ones
// through the staging buffer (views copy via read_at, see tensor_ref::read_bytes).
template <class Emit>
void put_tensor(staging_buffer& staging, std::uint64_t offset, const tensor_ref& ref, Emit&& emit) {
    const std::uint64_t size = ref.byte_size();
    if (size == 0) return;
    if (size >= staging_buffer::direct_threshold) {
        if (!fits_size_t(size))
            throw_error(errc::file_too_large, "tensor " + quote(ref.name()) + " does not fit in the address space");
        staging.flush(emit);
        if (ref.data() != nullptr) {
            emit(offset, ref.data(), static_cast<std::size_t>(size));
            return;
        }
        // A view of a reader: through the staging buffer, a chunk at a time.
        for (std::uint64_t done = 0; done < size;) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size - done, staging_buffer::capacity));
            ref.read_bytes(done, staging.reserve(offset + done, n, emit), n);
            staging.flush(emit);
            done += n;
        }
        return;
    }
    ref.read_bytes(0, staging.reserve(offset, static_cast<std::size_t>(size), emit), static_cast<std::size_t>(size));
}

// Copies every tensor's bytes to its place after the head in out. Views of a reader are
// fetched in one source::read_ranges batch per run of tensors from the same source.
inline void copy_tensors(span<const tensor_ref> refs, const write_plan& plan, std::byte* out) {
    std::vector<byte_range> batch;
    const source* batch_source = nullptr;
    for (std::size_t i : plan.order) {
        std::byte* at = out + plan.head.size() + plan.begin[i];
        const auto n = static_cast<std::size_t>(plan.size[i]);
        const source* src = refs[i].source();
        if (src == nullptr || src->addressable() || n == 0) {
            refs[i].read_bytes(0, at, n);
            continue;
        }
        if (src != batch_source && !batch.empty()) {
            batch_source->read_ranges(batch);
            batch.clear();
        }
        batch_source = src;
        batch.push_back({refs[i].source_offset(), n, at});
    }
    if (!batch.empty()) batch_source->read_ranges(batch);
}

} // namespace detail

// The file's bytes in memory (Python's safetensors.torch.save). Throws safetensors::error.
inline std::vector<std::byte> serialize(const tensor_list& tensors, metadata_ref metadata = {},
                                        const write_options& options = {}) {
    const span<const tensor_ref> refs = tensors.refs();
    const detail::write_plan plan = detail::plan_for(refs, metadata.get(), options);
    std::uint64_t total = 0;
    if (!detail::checked_add(plan.data_offset(), plan.data_size, total) || !detail::fits_size_t(total))
        detail::throw_error(errc::file_too_large, "a file of " + std::to_string(plan.data_offset()) + " + " +
                                                      std::to_string(plan.data_size) + " bytes does not fit in memory");
    std::vector<std::byte> out(detail::to_size(total));
    std::memcpy(out.data(), plan.head.data(), plan.head.size());
    detail::copy_tensors(refs, plan, out.data());
    return out;
}

// Writes path (UTF-8) atomically: see the top of this header. Python's save_file, e.g.
//   save("model.safetensors", {{"embedding", dtype::F32, {2, 2}, zeros}}, {{"format", "pt"}});
inline void save(const std::string& path, const tensor_list& tensors, metadata_ref metadata = {},
                 const write_options& options = {}) {
    detail::about_path(path, [&] {
        const span<const tensor_ref> refs = tensors.refs();
        const detail::write_plan plan = detail::plan_for(refs, metadata.get(), options);
        // Removes the temporary file if anything below throws.
        detail::atomic_file out(path, options.sync, !options.keep_in_cache);
        detail::staging_buffer staging;
        auto emit = [&out](std::uint64_t offset, const void* data, std::size_t size) { out.write_at(offset, data, size); };
        staging.put(0, plan.head.data(), plan.head.size(), emit);
        for (std::size_t i : plan.order) detail::put_tensor(staging, plan.data_offset() + plan.begin[i], refs[i], emit);
        staging.flush(emit);
        out.commit(options.sync);
    });
}

namespace detail {
inline std::vector<tensor_ref> refs_of(const file& f) {
    std::vector<tensor_ref> refs;
    refs.reserve(f.size());
    for (const tensor_view& view : f) refs.emplace_back(view);
    return refs;
}
} // namespace detail

// Every tensor and the metadata of an opened file. For a canonical file (is_canonical) the
// result is the file itself, byte for byte; any other valid file comes out canonical.
inline std::vector<std::byte> serialize(const file& f, const write_options& options = {}) {
    return serialize(detail::refs_of(f), f.metadata(), options);
}
// Rewriting a file onto its own path is safe: the new bytes go to a temporary file (on
// Windows the rename fails while the old file is open and mapped).
inline void save(const std::string& path, const file& f, const write_options& options = {}) {
    save(path, detail::refs_of(f), f.metadata(), options);
}

// True when the file is laid out exactly as this writer (and the reference writer, given at
// most one metadata key) writes its tensors and metadata with these options: tensor order,
// compact JSON and escapes, padding. Writing such a file back reproduces it byte for byte.
// Reads only the header.
inline bool is_canonical(const file& f, const write_options& options = {}) {
    detail::write_plan plan;
    const header_table& table = f.header();
    try {
        plan = detail::make_plan(
            table.size(),
            [&](std::size_t i) {
                const tensor_info t = table[i];
                return detail::tensor_spec{t.name, t.dtype, t.shape, false, 0, nullptr};
            },
            f.metadata(), options);
    } catch (const error&) {
        return false;  // e.g. invalid options: no file is canonical for them
    }
    if (plan.head.size() != table.data_offset() || plan.data_size != table.data_size()) return false;
    std::string head(plan.head.size(), '\0');
    f.source()->read_at(0, &head[0], head.size());
    return head == plan.head;
}

} // namespace safetensors
