// safetensors-hpp: O_DIRECT reads for the CUDA loader (safetensors/cuda.hpp), Linux only.
//
// From a cold page cache, buffered reads copy every byte twice (disk -> page cache -> staging)
// and fill the page cache with data nobody reads again; O_DIRECT lets the disk write straight
// into the pinned staging ring. The rules: file offset, length and memory address all
// multiples of the logical block size (4096 covers every common device).
#pragma once

#if defined(__linux__)

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checked.hpp"
#include "../error.hpp"
#include "../source.hpp"

namespace safetensors::detail {

class direct_file {
public:
    static constexpr std::size_t alignment = 4096;

    // Opens path with O_DIRECT. is_open() is false when the file system refuses O_DIRECT
    // (tmpfs and some overlay and network file systems answer EINVAL); callers then read
    // buffered. Any other failure throws.
    explicit direct_file(const std::string& path) : path_(path) {
        do {
            fd_.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
        } while (fd_.fd < 0 && errno == EINTR);
        if (fd_.fd < 0) {
            if (errno == EINVAL) return;
            throw_errno(errno, "cannot open", path);
        }
        struct stat st {};
        if (::fstat(fd_.fd, &st) != 0) throw_errno(errno, "cannot stat", path);
        if (!S_ISREG(st.st_mode)) throw_error(errc::not_regular_file, quote(path) + " is not a regular file");
        size_ = static_cast<std::uint64_t>(st.st_size);
    }

    bool is_open() const noexcept { return fd_.fd >= 0; }
    std::uint64_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }

    // Reads [offset, offset + length) into destination; all three aligned. The range may run
    // past the end of the file (the last block of a plan does): the read stops there.
    void read_aligned(std::uint64_t offset, void* destination, std::size_t length) const {
        auto* out = static_cast<char*>(destination);
        while (length > 0 && offset < size_) {
            const std::size_t ask = length > (std::size_t{1} << 30) ? (std::size_t{1} << 30) : length;
            const ssize_t got = ::pread(fd_.fd, out, ask, static_cast<off_t>(offset));
            if (got < 0) {
                if (errno == EINTR) continue;
                throw_errno(errno, "cannot read (O_DIRECT)", path_);
            }
            if (got == 0)
                throw_error(errc::short_read, "unexpected end of file in " + quote(path_) + " at offset " +
                                                  std::to_string(offset) + " (did the file shrink after it was opened?)");
            // A short read ends at the end of the file (the next offset would be unaligned).
            out += got;
            offset += static_cast<std::uint64_t>(got);
            length -= static_cast<std::size_t>(got);
        }
    }

    // Any range, through an aligned bounce buffer: for the header, not for bulk data.
    void read(std::uint64_t offset, void* destination, std::size_t length) const {
        if (length == 0) return;
        const std::uint64_t begin = offset / alignment * alignment;
        const std::uint64_t end = (offset + length + alignment - 1) / alignment * alignment;
        const auto span = detail::to_size(end - begin);
        std::unique_ptr<void, void (*)(void*)> bounce(std::aligned_alloc(alignment, span), std::free);
        if (!bounce) throw std::bad_alloc();
        read_aligned(begin, bounce.get(), span);
        std::memcpy(destination, static_cast<const char*>(bounce.get()) + (offset - begin), length);
    }

private:
    fd_guard fd_;
    std::string path_;
    std::uint64_t size_ = 0;
};

// A source that reads through a direct_file (no mapping: data() is null), so the header can
// be parsed by read_header() from the same descriptor the data is read from: the header and
// the data cannot come from two different files even if the path is replaced meanwhile.
class direct_source final : public source {
public:
    explicit direct_source(std::shared_ptr<const direct_file> file)
        : source(nullptr, file->size(), file->path()), file_(std::move(file)) {}
    const direct_file& file() const noexcept { return *file_; }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        file_->read(offset, destination, length);  // read_at checked the range against the size
    }

private:
    std::shared_ptr<const direct_file> file_;
};

} // namespace safetensors::detail

#endif // __linux__
