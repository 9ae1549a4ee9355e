// safetensors-hpp: load(), every tensor of a file in owned memory (Python's load_file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/parallel_read.hpp"
#include "file.hpp"
#include "source.hpp"
#include "tensor.hpp"
#include "view.hpp"

namespace safetensors {

struct load_options {
    // Threads copying bytes into the tensors: 0 picks one per hardware thread (at most 8).
    // Small files are read on the calling thread whatever this says (a thread per 64 MiB).
    unsigned threads = 0;
};

// Every tensor of a file (or of an already opened one) in owned memory. The bytes are read
// through the source's read_at (pread for files), so a file truncated meanwhile gives an
// error, never a SIGBUS; large files are read by several threads at once. Over a reader the
// tensors are fetched with one source::read_ranges call (the reader batches them).
inline tensor_map load(const file& f, const load_options& options = {}) {
    tensor_map out;
    std::vector<detail::read_job> jobs;
    jobs.reserve(f.size());
    std::uint64_t total = 0;
    for (auto view : f) {
        tensor t = detail::tensor_loader::uninitialized(std::string(view.name()), view.dtype(), view.shape());
        if (t.byte_size() != 0)
            jobs.push_back({view.source_offset(), t.data(), detail::to_size(t.byte_size())});
        total += t.byte_size();
        out.emplace(std::string(view.name()), std::move(t));
    }
    const auto& src = *f.source();
    if (!src.addressable()) {  // a reader: one batch, fetched as the reader sees fit
        std::vector<byte_range> ranges;
        ranges.reserve(jobs.size());
        for (const auto& job : jobs) ranges.push_back({job.offset, job.length, job.destination});
        src.read_ranges(ranges);
        return out;
    }
    auto read = [&src](std::uint64_t offset, std::byte* destination, std::size_t length) {
        src.read_at(offset, destination, length);
    };
    if (!jobs.empty()) detail::parallel_read(read, jobs, detail::read_threads_for(total, options.threads));
    return out;
}
inline tensor_map load(const std::string& path, const open_options& options = {}, const load_options& how = {}) {
    return load(file::open(path, options), how);
}

} // namespace safetensors
