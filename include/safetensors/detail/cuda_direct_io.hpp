// safetensors-hpp: O_DIRECT reads for the CUDA loader (safetensors/cuda.hpp), where the OS
// layer has them (os::has_direct_io; elsewhere a direct_file never opens).
//
// From a cold page cache, buffered reads copy every byte twice (disk -> page cache -> staging)
// and fill the page cache with data nobody reads again; O_DIRECT lets the disk write straight
// into the pinned staging ring. The rules: file offset, length and memory address all
// multiples of the logical block size (4096 covers every common device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "checked.hpp"
#include "os.hpp"
#include "../error.hpp"
#include "../source.hpp"

namespace safetensors::detail {

class direct_file {
public:
    static constexpr std::size_t alignment = 4096;

    // Opens path with O_DIRECT. is_open() is false when the platform or the file system
    // refuses O_DIRECT (tmpfs and some overlay and network file systems); callers then read
    // buffered. Any other failure throws.
    explicit direct_file(const std::string& path) : path_(path) { file_ = os::open_direct(path, size_); }

    bool is_open() const noexcept { return file_.valid(); }
    std::uint64_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }

    // Reads [offset, offset + length) into destination; all three aligned. The range may run
    // past the end of the file (the last block of a plan does): the read stops there (a short
    // read ends at the end of the file, since the next offset would be unaligned).
    void read_aligned(std::uint64_t offset, void* destination, std::size_t length) const {
        os::read_fully(file_, offset, destination, length, path_, "cannot read (O_DIRECT)", size_);
    }

    // Any range, through an aligned bounce buffer: for the header, not for bulk data.
    void read(std::uint64_t offset, void* destination, std::size_t length) const {
        if (length == 0) return;
        const std::uint64_t begin = offset / alignment * alignment;
        const std::uint64_t end = (offset + length + alignment - 1) / alignment * alignment;
        const auto span = detail::to_size(end - begin);
        struct aligned_free {
            void operator()(void* p) const noexcept { ::operator delete(p, std::align_val_t{alignment}); }
        };
        const std::unique_ptr<void, aligned_free> bounce(::operator new(span, std::align_val_t{alignment}));
        read_aligned(begin, bounce.get(), span);
        std::memcpy(destination, static_cast<const char*>(bounce.get()) + (offset - begin), length);
    }

private:
    os::file file_;
    std::string path_;
    std::uint64_t size_ = 0;
};

// A reader (not addressable) over a direct_file: no mapping, data() is null, so the header can
// be parsed by read_header() from the same descriptor the data is read from: the header and
// the data cannot come from two different files even if the path is replaced meanwhile.
class direct_source final : public source {
public:
    explicit direct_source(std::shared_ptr<const direct_file> file)
        : source(file->size(), file->path()), file_(std::move(file)) {}
    const direct_file& file() const noexcept { return *file_; }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        file_->read(offset, destination, length);  // read_at checked the range against the size
    }

private:
    std::shared_ptr<const direct_file> file_;
};

} // namespace safetensors::detail
