// safetensors-hpp: stream_writer, which writes a file whose tensors are declared first and
// whose bytes arrive later, in chunks: O(header + chunk) memory, so files larger than memory can
// be written. The output is the bytes save() writes for the same tensors and metadata, and a
// path is replaced atomically as save() does it (writer.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/atomic_file.hpp"
#include "detail/closest_name.hpp"
#include "detail/staging_buffer.hpp"
#include "detail/write_plan.hpp"
#include "error.hpp"
#include "header_table.hpp"
#include "metadata.hpp"
#include "span.hpp"
#include "tensor_ref.hpp"
#include "write_options.hpp"

namespace safetensors {

// Writes a file whose tensors are declared up front and whose bytes arrive later, in chunks
// of any size, so files larger than memory can be written: memory use is the header plus a
// 1 MiB staging buffer. The writer plans the layout at construction (every validation error
// is thrown there, before any output) and says, through tensor(i), which tensor it wants at
// each position of the file.
//
// Tensors are declared as tensor_refs without bytes, e.g. {"embedding", dtype::F32, {2, 2}}.
// Only their names, dtypes and shapes are used: sizes come from dtype and shape, and any bytes
// a tensor_ref carries are ignored (they are supplied through write()).
//
// To a path (seekable): the tensors' bytes may arrive in any order, even interleaved; each
// goes to its planned offset in the temporary file. commit() checks that every tensor is
// complete, then flushes and renames. If the writer is destroyed (an exception unwinding past
// it, say) or abort()ed before commit(), the temporary file is removed and the target is left
// as it was.
//
// To a sink (a pipe, a socket, a hash): bytes must arrive in file order: all of tensor(0),
// then tensor(1), ...; next() names the tensor wanted now. The header goes to the sink at
// construction.
//
// Errors: a write of more bytes than a tensor has left, or out of order on a sink, or a
// commit() with a tensor incomplete, throws stream_error and writes nothing (the writer stays
// usable). An I/O error or an exception from the sink aborts the writer; later calls throw
// stream_error.
class stream_writer {
public:
    using sink_function = std::function<void(const std::byte* data, std::size_t size)>;

private:
    // Heap-allocated, so the string_views and spans handed out stay valid when the writer moves.
    struct state {
        state(std::vector<tensor_ref> tensors, const metadata_map* metadata, const write_options& options)
            : decls(std::move(tensors)), sync(options.sync) {
            plan = detail::make_plan(
                decls.size(),
                [this](std::size_t i) {
                    const tensor_ref& d = decls[i];
                    return detail::tensor_spec{d.name(), d.dtype(), d.shape(), false, 0, nullptr};
                },
                metadata, options);
            written.assign(decls.size(), 0);
            position.resize(decls.size());
            for (std::size_t k = 0; k < plan.order.size(); ++k) position[plan.order[k]] = k;
            advance();
        }

        auto emitter() {
            return [this](std::uint64_t offset, const void* data, std::size_t size) {
                if (file)
                    file->write_at(offset, data, size);
                else
                    sink(static_cast<const std::byte*>(data), size);
            };
        }
        // Runs f; if it throws, the output is abandoned (temporary file removed) for good.
        template <class F>
        void guarded(F&& f) {
            try {
                f();
            } catch (...) {
                failed = true;
                if (file) file->discard();
                throw;
            }
        }
        void put(std::uint64_t offset, const void* data, std::size_t size) {
            guarded([&] { staging.put(offset, data, size, emitter()); });
        }
        void advance() noexcept {
            while (next < plan.order.size() && written[next] == plan.size[plan.order[next]]) ++next;
        }

        std::vector<tensor_ref> decls;  // as declared (input order)
        detail::write_plan plan;
        std::vector<std::uint64_t> written;  // by file-order index
        std::vector<std::size_t> position;   // input index -> file-order index
        std::size_t next = 0;
        bool sync = true;
        bool failed = false;
        bool done = false;
        std::unique_ptr<detail::atomic_file> file;
        sink_function sink;
        detail::staging_buffer staging;
    };

public:

    stream_writer(const std::string& path, std::vector<tensor_ref> tensors, metadata_ref metadata = {},
                  const write_options& options = {})
        : state_(detail::about_path(path, [&] { return std::make_unique<state>(std::move(tensors), metadata.get(), options); })) {
        detail::about_path(path, [&] {
            state_->file = std::make_unique<detail::atomic_file>(path, options.sync, !options.keep_in_cache);
            state_->put(0, state_->plan.head.data(), state_->plan.head.size());
        });
    }
    stream_writer(sink_function sink, std::vector<tensor_ref> tensors, metadata_ref metadata = {},
                  const write_options& options = {})
        : state_(std::make_unique<state>(std::move(tensors), metadata.get(), options)) {
        if (!sink) detail::throw_error(errc::invalid_argument, "stream_writer: empty sink function");
        state_->sink = std::move(sink);
        state_->put(0, state_->plan.head.data(), state_->plan.head.size());
    }

    stream_writer(stream_writer&&) noexcept = default;
    stream_writer& operator=(stream_writer&&) noexcept = default;  // the old writer is aborted
    ~stream_writer() = default;

    // Whether tensors may be written in any order (a file) or only in file order (a sink).
    // A path that names a character device or a FIFO is written in file order, like a sink.
    bool seekable() const noexcept { return state_->file != nullptr && !state_->file->streaming(); }

    // The tensors in file order: name, dtype, shape, and data_offsets (relative to the data
    // section, which starts at data_offset()).
    std::size_t size() const noexcept { return state_->plan.order.size(); }
    tensor_info tensor(std::size_t index) const {
        check_index(index);
        const std::size_t input = state_->plan.order[index];
        const tensor_ref& d = state_->decls[input];
        return {d.name(), d.dtype(), d.shape(), state_->plan.begin[input], state_->plan.begin[input] + state_->plan.size[input]};
    }
    // File-order index of the tensor called name.
    std::optional<std::size_t> find(std::string_view name) const noexcept {
        const auto& by_name = state_->plan.by_name;
        auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                                   [this](std::size_t i, std::string_view n) { return state_->decls[i].name() < n; });
        if (it == by_name.end() || state_->decls[*it].name() != name) return std::nullopt;
        return state_->position[*it];
    }
    // The first tensor, in file order, that still lacks bytes; size() once all are complete.
    std::size_t next() const noexcept { return state_->next; }
    // Bytes of tensor index supplied so far.
    std::uint64_t written(std::size_t index) const {
        check_index(index);
        return state_->written[index];
    }

    std::uint64_t header_size() const noexcept { return state_->plan.head.size() - 8; }  // N
    std::uint64_t data_offset() const noexcept { return state_->plan.data_offset(); }
    std::uint64_t file_size() const noexcept { return state_->plan.data_offset() + state_->plan.data_size; }

    // Appends size bytes to the tensor at file-order index (or called name).
    void write(std::size_t index, const void* data, std::size_t size) {
        check_usable();
        check_index(index);
        state& s = *state_;
        const std::size_t input = s.plan.order[index];
        const std::uint64_t total = s.plan.size[input];
        const std::uint64_t done = s.written[index];
        const std::string_view name = s.decls[input].name();
        if (size > total - done)
            detail::throw_error(errc::stream_error, "tensor " + detail::quote(name) + ": " + std::to_string(size) +
                                                        " bytes given, but only " + std::to_string(total - done) +
                                                        " of its " + std::to_string(total) + " bytes remain");
        if (!seekable() && index != s.next && size != 0)
            detail::throw_error(errc::stream_error,
                                "tensor " + detail::quote(name) + " cannot be written yet: the output is not seekable, " +
                                    "so bytes must come in file order, and tensor " +
                                    detail::quote(s.decls[s.plan.order[s.next]].name()) + " is next");
        if (size == 0) return;
        if (data == nullptr) detail::throw_error(errc::invalid_argument, "stream_writer::write: null data");
        s.put(s.plan.data_offset() + s.plan.begin[input] + done, data, size);
        s.written[index] = done + size;
        s.advance();
    }
    void write(std::size_t index, span<const std::byte> chunk) { write(index, chunk.data(), chunk.size()); }
    void write(std::string_view name, const void* data, std::size_t size) { write(index_of(name), data, size); }
    void write(std::string_view name, span<const std::byte> chunk) { write(index_of(name), chunk.data(), chunk.size()); }

    // Checks every tensor is complete, then writes out what is staged; for a path, flushes
    // (write_options::sync) and renames the temporary file over the target.
    void commit() {
        check_usable();
        state& s = *state_;
        if (s.next != size()) {
            const std::size_t input = s.plan.order[s.next];
            std::size_t incomplete = 0;
            for (std::size_t i = s.next; i < size(); ++i)
                if (s.written[i] != s.plan.size[s.plan.order[i]]) ++incomplete;
            detail::throw_error(errc::stream_error,
                                "cannot commit: tensor " + detail::quote(s.decls[input].name()) + " has " +
                                    std::to_string(s.written[s.next]) + " of its " + std::to_string(s.plan.size[input]) +
                                    " bytes" +
                                    (incomplete > 1 ? " (" + std::to_string(incomplete) + " tensors are incomplete)" : ""));
        }
        s.guarded([&] {
            s.staging.flush(s.emitter());
            if (s.file) s.file->commit(s.sync);
        });
        s.done = true;
    }

    // Discards everything: the temporary file is removed, the target untouched. Idempotent.
    void abort() noexcept {
        if (!state_) return;
        if (state_->file) state_->file->discard();
        state_->failed = true;
    }
    bool committed() const noexcept { return state_ && state_->done; }

private:
    void check_index(std::size_t index) const {
        if (index >= size())
            detail::throw_error(errc::out_of_range, "tensor index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(size()) + " tensors)");
    }
    void check_usable() const {
        if (!state_) detail::throw_error(errc::stream_error, "stream_writer was moved from");
        if (state_->done) detail::throw_error(errc::stream_error, "stream_writer is already committed");
        if (state_->failed) detail::throw_error(errc::stream_error, "stream_writer was aborted by an earlier error");
    }
    std::size_t index_of(std::string_view name) const {
        auto index = find(name);
        if (!index) {
            const auto& by_name = state_->plan.by_name;
            const auto closest = detail::closest_name(name, by_name.size(),
                                                      [this, &by_name](std::size_t k) -> std::string_view {
                                                          return state_->decls[by_name[k]].name();
                                                      });
            detail::throw_error(errc::tensor_not_found,
                                "no tensor named " + detail::quote(name) + " was declared" + detail::did_you_mean(closest));
        }
        return *index;
    }

    std::unique_ptr<state> state_;
};

} // namespace safetensors
