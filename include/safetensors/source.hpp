// safetensors-hpp: where a file's bytes come from, and what keeps them alive.
//
// A source is an immutable byte range: a read-only memory map of a file, a file read
// into private memory, a caller's buffer (borrowed), an owned buffer, or a reader the
// caller writes (bytes reached only through reads: a network object, a compressed store).
// Views hold a shared_ptr to their source, so no view can outlive the bytes it points at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
#include "span.hpp"
#include "detail/checked.hpp"
#include "detail/inlining.hpp"
#include "detail/os.hpp"
#include "detail/parallel_read.hpp"

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

// One range of a batched read: length bytes at offset of the source, copied to destination.
struct byte_range {
    std::uint64_t offset = 0;
    std::size_t length = 0;
    void* destination = nullptr;
};

// An immutable byte range with an owner. Thread-safe: every member is const, and a source
// may be read by several threads at once.
//
// The library's own sources are addressable: data() points at all their bytes, and views
// hand out pointers into them without copying. A pluggable reader need not be:
//
//   class my_reader final : public safetensors::source {
//   public:
//       my_reader(...) : source(total_size, "s3://bucket/model.safetensors") {}
//   protected:
//       // [offset, offset + length) is within size(): read_at checked it. Throw
//       // safetensors::error (or anything) on failure; it reaches the caller unchanged.
//       void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override;
//       // Optional: fetch several ranges at once (one request, in parallel ...). The default
//       // reads them one by one with do_read_at.
//       void do_read_ranges(safetensors::span<const safetensors::byte_range> ranges) const override;
//   };
//   auto f = safetensors::file::from_source(std::make_shared<my_reader>(...));
//
// open reads the header with two reads (the 8-byte length, then the JSON). Over such a
// source everything that copies works (copy_to, read_bytes, tensor::copy_of, slices, load,
// convert, the writer); what would hand out a pointer (tensor_view::data, bytes, as<T>,
// element, DLPack export) throws errc::not_addressable.
class source {
public:
    virtual ~source() = default;
    source(const source&) = delete;
    source& operator=(const source&) = delete;

    // Addressable bytes [data(), data() + size()); null when !addressable().
    const std::byte* data() const noexcept { return data_; }
    // True when data() holds every byte (maps and buffers); false for a reader.
    bool addressable() const noexcept { return addressable_; }
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

    // Copies every range (each checked like read_at, all before the first is read). The
    // library calls this whenever it has several ranges to fetch (a slice's runs, load()
    // over a reader), so a reader can batch or parallelize them.
    void read_ranges(span<const byte_range> ranges) const {
        for (const byte_range& r : ranges) check_range(r.offset, r.length);
        do_read_ranges(ranges);
    }

protected:
    // An addressable source: data (set later by a derived constructor when null) holds the
    // bytes.
    source(const std::byte* data, std::uint64_t size, std::string description)
        : data_(data), size_(size), description_(std::move(description)) {}
    // A reader: no addressable bytes, every byte comes through do_read_at / do_read_ranges.
    source(std::uint64_t size, std::string description)
        : data_(nullptr), size_(size), description_(std::move(description)), addressable_(false) {}

    virtual void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const {
        if (length != 0) std::memcpy(destination, data_ + offset, length);
    }
    virtual void do_read_ranges(span<const byte_range> ranges) const {
        for (const byte_range& r : ranges) do_read_at(r.offset, r.destination, r.length);
    }

    // For a reader whose work is in do_read_ranges: one read as a batch of one range.
    void read_as_batch(std::uint64_t offset, void* destination, std::size_t length) const {
        const byte_range one{offset, length, destination};
        do_read_ranges(span<const byte_range>(&one, 1));
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

private:
    bool addressable_ = true;
};

namespace detail {

// Owned bytes, 64-byte aligned so typed access never trips an alignment check. Large
// buffers (weights) come straight from the kernel as huge pages where the OS layer has them:
// filling 1 GiB of fresh 4 KiB pages costs 262,144 page faults, of 2 MiB pages 512.
struct aligned_delete {
    std::size_t mapped_length = 0;  // non-zero: the bytes came from os::allocate_pages
    void operator()(std::byte* p) const noexcept {
        if (mapped_length != 0) {
            os::free_pages(p, mapped_length);
            return;
        }
        ::operator delete(p, std::align_val_t{64});
    }
};
using aligned_bytes = std::unique_ptr<std::byte, aligned_delete>;

constexpr std::size_t huge_alloc_threshold = std::size_t{4} << 20;

inline aligned_bytes allocate_aligned(std::size_t size) {
    if (os::has_huge_pages && size >= huge_alloc_threshold) {
        void* p = os::allocate_pages(size);
        if (p == nullptr) throw std::bad_alloc();
        return aligned_bytes(static_cast<std::byte*>(p), aligned_delete{size});
    }
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

// A file opened by path: mapped (its pages are the file's) or read into private memory.
class file_source final : public source {
public:
    SAFETENSORS_DETAIL_HOT file_source(const std::string& path, const open_options& options) : source(nullptr, 0, path) {
        file_ = os::open_read(path, size_);
        if (!fits_size_t(size_))
            throw_error(errc::file_too_large, quote(path) + " (" + std::to_string(size_) +
                                                  " bytes) does not fit in the address space");
        if (size_ == 0) return;  // mmap of 0 bytes fails; the header check reports it
        const auto length = detail::to_size(size_);
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
        map_ = os::map_read(file_, length, options.populate, path);
        data_ = static_cast<const std::byte*>(map_.data());
        os::advise(map_, to_os_advice(options.advice));
    }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        // Read mode: the bytes are already ours, and copies must agree with the views even
        // if the file has changed since.
        if (owned_ && data_ == owned_.get()) {
            if (length != 0) std::memcpy(destination, data_ + offset, length);
            return;
        }
        os::read_fully(file_, offset, destination, length, description_);
    }

private:
    static os::advice to_os_advice(access_advice advice) noexcept {
        switch (advice) {
            case access_advice::sequential: return os::advice::sequential;
            case access_advice::random: return os::advice::random;
            case access_advice::willneed: return os::advice::willneed;
            case access_advice::normal: break;
        }
        return os::advice::normal;
    }

    os::file file_;
    os::mapping map_;  // destroyed before file_
    aligned_bytes owned_;
};

} // namespace detail

namespace detail {
// The owner of a new source of any kind. Not make_shared: that compiles its machinery once per
// kind, this once for all of them (about 1 MB of compiler memory each; compile cost).
inline std::shared_ptr<const source> share(const source* created) { return std::shared_ptr<const source>(created); }
} // namespace detail

// Opens path (UTF-8) as a source: memory-mapped or read into memory per options.
SAFETENSORS_DETAIL_HOT inline std::shared_ptr<const source> open_source(const std::string& path,
                                                                        const open_options& options = {}) {
    return detail::share(new detail::file_source(path, options));
}

// A source over a caller's buffer, without copying. The buffer must outlive every file,
// view and slice made from it, and must not change while they exist.
inline std::shared_ptr<const source> borrow_buffer(const void* data, std::size_t size) {
    if (data == nullptr && size != 0) detail::throw_error(errc::invalid_argument, "null buffer with nonzero size");
    return detail::share(new detail::borrowed_source(data, size));
}

// A source that owns its bytes.
inline std::shared_ptr<const source> own_buffer(std::vector<std::byte> bytes) {
    return detail::share(new detail::vector_source(std::move(bytes)));
}

} // namespace safetensors
