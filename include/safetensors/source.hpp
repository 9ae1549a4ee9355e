// safetensors-hpp: where a file's bytes come from, and what keeps them alive.
//
// A source is an immutable byte range: a read-only memory map of a file, a file read
// into private memory, a caller's buffer (borrowed), or an owned buffer. Views hold a
// shared_ptr to their source, so no view can outlive the bytes it points at.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
#include "detail/checked.hpp"
#include "detail/parallel_read.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#if !defined(_WIN32)
// The format is little-endian and views hand out the file's bytes as-is; byte-swapping
// every access would defeat zero-copy, so big-endian hosts are refused outright.
#error "safetensors-hpp supports little-endian hosts only"
#endif
#endif

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace safetensors {

// How open() gets at the bytes.
enum class open_mode {
    map,   // read-only memory map (default): O(header) open, pages faulted on first touch
    read,  // read the whole file into private memory: no SIGBUS if the file shrinks later
};

// Access-pattern hint passed to the kernel for mapped files (madvise).
enum class access_advice { normal, sequential, random, willneed };

struct open_options {
    open_mode mode = open_mode::map;
    access_advice advice = access_advice::normal;
    // Fault every page in at open (MAP_POPULATE on Linux). Makes open O(file size) but the
    // first pass over the data faster; off by default so open stays O(header).
    bool populate = false;
};

// An immutable byte range with an owner. Thread-safe: every member is const.
class source {
public:
    virtual ~source() = default;
    source(const source&) = delete;
    source& operator=(const source&) = delete;

    // Addressable bytes [data(), data() + size()).
    const std::byte* data() const noexcept { return data_; }
    std::uint64_t size() const noexcept { return size_; }
    // The path it came from, or a short description ("buffer").
    const std::string& description() const noexcept { return description_; }

    // Copies [offset, offset + length) to destination. Throws errc::short_read when the
    // range is past the end. Mapped files are read through the file descriptor, so a file
    // truncated after open gives an error here instead of a SIGBUS; read mode copies from
    // its private memory, so copies always agree with its views.
    void read_at(std::uint64_t offset, void* destination, std::size_t length) const {
        check_range(offset, length);
        do_read_at(offset, destination, length);
    }

protected:
    source(const std::byte* data, std::uint64_t size, std::string description)
        : data_(data), size_(size), description_(std::move(description)) {}

    virtual void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const {
        if (length != 0) std::memcpy(destination, data_ + offset, length);
    }

    void check_range(std::uint64_t offset, std::uint64_t length) const {
        std::uint64_t end = 0;
        if (!detail::checked_add(offset, length, end) || end > size_)
            detail::throw_error(errc::short_read,
                                "read of " + std::to_string(length) + " bytes at offset " +
                                    std::to_string(offset) + " is past the end of " +
                                    detail::quote(description_) + " (" + std::to_string(size_) +
                                    " bytes)");
    }

    const std::byte* data_;
    std::uint64_t size_;
    std::string description_;
};

namespace detail {

// Owned bytes, 64-byte aligned so typed access never trips an alignment check. Large
// buffers (weights) are mapped directly and marked for transparent huge pages: filling
// 1 GiB of fresh 4 KiB pages costs 262,144 page faults, of 2 MiB pages 512.
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
#define SAFETENSORS_DETAIL_HUGE_ALLOC 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && defined(SAFETENSORS_DETAIL_HUGE_ALLOC)
#undef SAFETENSORS_DETAIL_HUGE_ALLOC  // keep ASan's view of every heap buffer
#endif
#endif

struct aligned_delete {
    std::size_t mapped_length = 0;  // non-zero: the bytes came from mmap
    void operator()(std::byte* p) const noexcept {
#if defined(SAFETENSORS_DETAIL_HUGE_ALLOC)
        if (mapped_length != 0) {
            ::munmap(p, mapped_length);
            return;
        }
#endif
        ::operator delete(p, std::align_val_t{64});
    }
};
using aligned_bytes = std::unique_ptr<std::byte, aligned_delete>;

constexpr std::size_t huge_alloc_threshold = std::size_t{4} << 20;

inline aligned_bytes allocate_aligned(std::size_t size) {
#if defined(SAFETENSORS_DETAIL_HUGE_ALLOC)
    if (size >= huge_alloc_threshold) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        ::madvise(p, size, MADV_HUGEPAGE);  // a hint: without THP the pages are just smaller
        return aligned_bytes(static_cast<std::byte*>(p), aligned_delete{size});
    }
#endif
    return aligned_bytes(static_cast<std::byte*>(::operator new(size == 0 ? 1 : size, std::align_val_t{64})));
}

class borrowed_source final : public source {
public:
    borrowed_source(const void* data, std::size_t size)
        : source(static_cast<const std::byte*>(data), size, "buffer") {}
};

class vector_source final : public source {
public:
    explicit vector_source(std::vector<std::byte> bytes)
        : source(nullptr, bytes.size(), "buffer"), bytes_(std::move(bytes)) {
        data_ = bytes_.data();
    }

private:
    std::vector<std::byte> bytes_;
};

class memory_source final : public source {
public:
    memory_source(aligned_bytes bytes, std::uint64_t size, std::string description)
        : source(bytes.get(), size, std::move(description)), bytes_(std::move(bytes)) {}

private:
    aligned_bytes bytes_;
};

#if defined(_WIN32)

inline std::wstring utf8_to_wide(const std::string& text) {
    if (text.empty()) return {};
    int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()),
                                  nullptr, 0);
    if (n <= 0) throw_error(errc::invalid_argument, "path is not valid UTF-8: " + quote(text));
    std::wstring wide(static_cast<std::size_t>(n), L'\0');
    ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()), &wide[0], n);
    return wide;
}

// The errno value a Windows error stands for, so system_code() compares equal to the same
// std::errc on every platform; EIO for codes without a POSIX equivalent.
inline int windows_errno(DWORD code) noexcept {
    switch (code) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE: return ENOENT;
    case ERROR_ACCESS_DENIED: return EACCES;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_USER_MAPPED_FILE: return EBUSY;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return EEXIST;
    case ERROR_WRITE_PROTECT: return EROFS;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_INVALID_NAME: return EINVAL;
    case ERROR_DIRECTORY: return ENOTDIR;
    default: return EIO;
    }
}

// The text of a Windows error: the C library's wording for the codes that have a POSIX
// equivalent, so a message reads the same on every platform; the number otherwise.
inline std::string windows_error_text(DWORD code) {
    const int err = windows_errno(code);
    if (err == EIO || err == EBUSY) return "Windows error " + std::to_string(code);
    return std::strerror(err);
}

[[noreturn]] inline void throw_last_error(const std::string& what, const std::string& path) {
    const DWORD code = ::GetLastError();
    const int err = windows_errno(code);
    errc e = errc::io_error;
    if (err == ENOENT) e = errc::file_not_found;
    if (err == EACCES) e = errc::permission_denied;
    throw_error(e, what + " " + quote(path) + ": " + windows_error_text(code), path, errno_code(err));
}

inline bool is_directory(const std::wstring& path) {
    const DWORD attributes = ::GetFileAttributesW(path.c_str());
    return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

// Owns a Windows HANDLE.
struct handle_guard {
    HANDLE h = INVALID_HANDLE_VALUE;
    ~handle_guard() {
        if (h != INVALID_HANDLE_VALUE && h != nullptr) ::CloseHandle(h);
    }
};

class file_source final : public source {
public:
    file_source(const std::string& path, const open_options& options) : source(nullptr, 0, path) {
        std::wstring wide = utf8_to_wide(path);
        file_.h = ::CreateFileW(wide.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                                OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
        if (file_.h == INVALID_HANDLE_VALUE) {
            // CreateFileW refuses a folder with "access denied"; say what it is, as POSIX does.
            const DWORD code = ::GetLastError();
            if (code == ERROR_ACCESS_DENIED && is_directory(wide))
                throw_error(errc::not_regular_file, quote(path) + " is a directory");
            ::SetLastError(code);
            throw_last_error("cannot open", path);
        }
        if (::GetFileType(file_.h) != FILE_TYPE_DISK)
            throw_error(errc::not_regular_file, quote(path) + " is not a regular file");
        LARGE_INTEGER size{};
        if (!::GetFileSizeEx(file_.h, &size)) throw_last_error("cannot get the size of", path);
        size_ = static_cast<std::uint64_t>(size.QuadPart);
        if (!fits_size_t(size_))
            throw_error(errc::file_too_large, quote(path) + " does not fit in the address space");
        if (size_ == 0) return;  // nothing to map; the header check reports it
        if (options.mode == open_mode::read) {
            owned_ = allocate_aligned(to_size(size_));
            do_read_at(0, owned_.get(), to_size(size_));
            data_ = owned_.get();
            return;
        }
        mapping_.h = ::CreateFileMappingW(file_.h, nullptr, PAGE_READONLY, 0, 0, nullptr);
        if (mapping_.h == nullptr) throw_last_error("cannot map", path);
        view_ = ::MapViewOfFile(mapping_.h, FILE_MAP_READ, 0, 0, 0);
        if (view_ == nullptr) throw_last_error("cannot map", path);
        data_ = static_cast<const std::byte*>(view_);
    }
    ~file_source() override {
        if (view_ != nullptr) ::UnmapViewOfFile(view_);
    }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        if (owned_ && data_ == owned_.get()) {  // read mode: see the POSIX version
            if (length != 0) std::memcpy(destination, data_ + offset, length);
            return;
        }
        auto* out = static_cast<char*>(destination);
        while (length > 0) {
            DWORD chunk = length > 0x40000000u ? 0x40000000u : static_cast<DWORD>(length);
            OVERLAPPED at{};
            at.Offset = static_cast<DWORD>(offset & 0xffffffffu);
            at.OffsetHigh = static_cast<DWORD>(offset >> 32);
            DWORD got = 0;
            if (!::ReadFile(file_.h, out, chunk, &got, &at)) throw_last_error("cannot read", description_);
            if (got == 0)
                throw_error(errc::short_read, "unexpected end of file in " + quote(description_) +
                                                  " at offset " + std::to_string(offset) +
                                                  " (did the file shrink after it was opened?)",
                            description_);
            out += got;
            offset += got;
            length -= got;
        }
    }

private:
    handle_guard file_;
    handle_guard mapping_;
    void* view_ = nullptr;
    aligned_bytes owned_;
};

#else  // POSIX

[[noreturn]] inline void throw_errno(int err, const std::string& what, const std::string& path) {
    errc e = errc::io_error;
    if (err == ENOENT || err == ENOTDIR) e = errc::file_not_found;
    if (err == EACCES || err == EPERM) e = errc::permission_denied;
    if (err == ENOMEM || err == EFBIG || err == EOVERFLOW) e = errc::file_too_large;
    throw_error(e, what + " " + quote(path) + ": " + std::strerror(err), path, errno_code(err));
}

// Owns a file descriptor.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

class file_source final : public source {
public:
    file_source(const std::string& path, const open_options& options) : source(nullptr, 0, path) {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; we refuse it right after.
        int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
        do {
            file_.fd = ::open(path.c_str(), flags);
        } while (file_.fd < 0 && errno == EINTR);
        if (file_.fd < 0) throw_errno(errno, "cannot open", path);
        struct stat st {};
        if (::fstat(file_.fd, &st) != 0) throw_errno(errno, "cannot stat", path);
        if (S_ISDIR(st.st_mode)) throw_error(errc::not_regular_file, quote(path) + " is a directory");
        if (!S_ISREG(st.st_mode)) throw_error(errc::not_regular_file, quote(path) + " is not a regular file");
        size_ = static_cast<std::uint64_t>(st.st_size);
        if (!fits_size_t(size_))
            throw_error(errc::file_too_large, quote(path) + " (" + std::to_string(size_) +
                                                  " bytes) does not fit in the address space");
        if (size_ == 0) return;  // mmap of 0 bytes fails; the header check reports it
        auto length = detail::to_size(size_);
        if (options.mode == open_mode::read) {
            // Several threads for large files: one cannot copy out of the page cache at
            // memory speed (see load()).
            owned_ = allocate_aligned(length);
            auto read = [this](std::uint64_t offset, std::byte* destination, std::size_t n) {
                do_read_at(offset, destination, n);
            };
            parallel_read(read, {{0, owned_.get(), length}}, read_threads_for(size_, 0));
            data_ = owned_.get();
            return;
        }
        int map_flags = MAP_PRIVATE;
#if defined(MAP_POPULATE)
        if (options.populate) map_flags |= MAP_POPULATE;
#endif
        void* p = ::mmap(nullptr, length, PROT_READ, map_flags, file_.fd, 0);
        if (p == MAP_FAILED) throw_errno(errno, "cannot map", path);
        map_ = p;
        map_length_ = length;
        data_ = static_cast<const std::byte*>(p);
        advise(options.advice);
    }
    ~file_source() override {
        if (map_ != nullptr) ::munmap(map_, map_length_);
    }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        // Read mode: the bytes are already ours, and copies must agree with the views even
        // if the file has changed since.
        if (owned_ && data_ == owned_.get()) {
            if (length != 0) std::memcpy(destination, data_ + offset, length);
            return;
        }
        auto* out = static_cast<char*>(destination);
        while (length > 0) {
            // Linux transfers at most about 2 GiB per call; ask for 1 GiB at a time.
            std::size_t chunk = length > (std::size_t{1} << 30) ? (std::size_t{1} << 30) : length;
            ssize_t got = ::pread(file_.fd, out, chunk, static_cast<off_t>(offset));
            if (got < 0) {
                if (errno == EINTR) continue;
                throw_errno(errno, "cannot read", description_);
            }
            if (got == 0)
                throw_error(errc::short_read, "unexpected end of file in " + quote(description_) +
                                                  " at offset " + std::to_string(offset) +
                                                  " (did the file shrink after it was opened?)",
                            description_);
            out += got;
            offset += static_cast<std::uint64_t>(got);
            length -= static_cast<std::size_t>(got);
        }
    }

private:
    void advise(access_advice advice) const noexcept {
        int hint = MADV_NORMAL;
        switch (advice) {
            case access_advice::normal: return;
            case access_advice::sequential: hint = MADV_SEQUENTIAL; break;
            case access_advice::random: hint = MADV_RANDOM; break;
            case access_advice::willneed: hint = MADV_WILLNEED; break;
        }
        ::madvise(map_, map_length_, hint);  // only a hint: failure changes nothing we rely on
    }

    fd_guard file_;
    void* map_ = nullptr;
    std::size_t map_length_ = 0;
    aligned_bytes owned_;
};

#endif

} // namespace detail

// Opens path (UTF-8) as a source: memory-mapped or read into memory per options.
inline std::shared_ptr<const source> open_source(const std::string& path, const open_options& options = {}) {
    return std::make_shared<detail::file_source>(path, options);
}

// A source over a caller's buffer, without copying. The buffer must outlive every file,
// view and slice made from it, and must not change while they exist.
inline std::shared_ptr<const source> borrow_buffer(const void* data, std::size_t size) {
    if (data == nullptr && size != 0) detail::throw_error(errc::invalid_argument, "null buffer with nonzero size");
    return std::make_shared<detail::borrowed_source>(data, size);
}

// A source that owns its bytes.
inline std::shared_ptr<const source> own_buffer(std::vector<std::byte> bytes) {
    return std::make_shared<detail::vector_source>(std::move(bytes));
}

} // namespace safetensors
