// safetensors-hpp: error codes, the exception type, and results for non-throwing calls.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <new>
#include <utility>

namespace safetensors {

// Stable numeric codes. Each hundred is one area, so a caller can test the range:
//   1xx I/O, 2xx header, 3xx access (lookup, typed access, slicing),
//   4xx writer, 5xx sharded index, 6xx CUDA, 7xx conversion / interop, 8xx remote (HTTP).
enum class errc : int {
    ok = 0,

    io_error = 100,            // an OS call failed (message carries errno text)
    file_not_found = 101,
    permission_denied = 102,
    not_regular_file = 103,    // directory, FIFO, device ...
    short_read = 104,          // file shrank or read_at went past the end
    map_failed = 105,
    file_too_large = 106,      // does not fit the address space (32-bit hosts)
    file_in_use = 107,         // Windows: the target is open or mapped, so it cannot be replaced

    header_too_small = 200,      // file shorter than 8 bytes
    header_too_large = 201,      // N > 100,000,000
    invalid_header_length = 202, // 8 + N past the end of the file
    invalid_utf8 = 203,
    invalid_json = 204,          // syntax error, NUL, BOM, trailing bytes
    nesting_too_deep = 205,      // 128 or more levels, like the reference
    invalid_header = 206,        // top level is not an object
    invalid_metadata = 207,      // __metadata__ not null/object, or a non-string value
    duplicate_metadata_key = 208,
    invalid_tensor_entry = 209,  // entry not an object, missing/duplicate/mistyped field
    unknown_dtype = 210,
    duplicate_tensor = 211,
    invalid_offsets = 212,       // gap, hole, overlap, reversed range
    shape_overflow = 213,
    misaligned_sub_byte = 214,   // sub-byte tensor that does not fill whole bytes
    size_mismatch = 215,         // end - begin != size implied by dtype and shape
    incomplete_coverage = 216,   // data buffer not covered exactly

    tensor_not_found = 300,
    dtype_mismatch = 301,        // typed access with the wrong element type
    misaligned_data = 302,       // typed access to data not aligned for the type
    invalid_argument = 303,
    out_of_range = 304,
    invalid_slice = 305,         // malformed index expression
    slice_out_of_range = 306,    // integer index outside its dimension
    unaligned_slice = 307,       // sub-byte slice that does not start/end on a byte
    not_addressable = 308,       // a pointer into a source read through a reader (no memory)

    write_failed = 400,
    invalid_tensor = 401,        // tensor handed to the writer is inconsistent
    duplicate_name = 402,
    reserved_name = 403,         // a tensor named __metadata__
    stream_error = 404,          // streaming writer used out of order

    invalid_index = 500,
    unsafe_shard_name = 501,
    missing_shard = 502,
    index_mismatch = 503,

    cuda_error = 600,
    cancelled = 601,

    unsupported_dtype = 700,

    remote_error = 800,          // an HTTP status the reader cannot use (the message names it)
    range_not_supported = 801,   // the server ignores Range (200 with the whole body)
    remote_changed = 802,        // size, ETag or Last-Modified differ from the ones pinned at open
    network_error = 803,         // connection, TLS or timeout failure after the last attempt
    unsafe_redirect = 804,       // to a scheme other than http(s), https -> http, or too many
    invalid_url = 805,
    invalid_response = 806,      // bad Content-Range, malformed multipart, wrong length
};

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "safetensors"; }
    std::string message(int code) const override {
        if (code == 0) return "success";
        if (code < 200) return "I/O error";
        if (code < 300) return "invalid header";
        if (code < 400) return "invalid access";
        if (code < 500) return "write error";
        if (code < 600) return "invalid sharded index";
        if (code < 700) return "CUDA error";
        if (code < 800) return "unsupported conversion";
        return "remote file error";
    }
};

} // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl category;
    return category;
}

inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), error_category()};
}

// The one exception type of the library. what() is "[safetensors.error.NNN] message";
// message() is the text alone, so tests and tools can print either. path() is the file or
// folder the error is about (empty when none is), and system_code() the OS error behind it:
// an errno value in std::generic_category(), so that
//     e.system_code() == std::errc::no_space_on_device
// holds after a full disk on every platform (empty when no OS call failed). Copying never
// throws: the texts are shared.
class error : public std::runtime_error {
public:
    error(errc code, const std::string& message, std::string path = {}, std::error_code system_code = {})
        : std::runtime_error("[safetensors.error." + std::to_string(static_cast<int>(code)) + "] " + message),
          code_(code), system_code_(system_code),
          texts_(new texts{message, std::move(path)}) {}  // not make_shared: compile cost

    errc code() const noexcept { return code_; }
    int id() const noexcept { return static_cast<int>(code_); }
    const std::string& message() const noexcept { return texts_->message; }
    const std::string& path() const noexcept { return texts_->path; }
    std::error_code system_code() const noexcept { return system_code_; }
    // The library's own code as a std::error_code (category "safetensors").
    std::error_code error_code() const noexcept { return make_error_code(code_); }

private:
    struct texts {
        std::string message;
        std::string path;
    };
    errc code_;
    std::error_code system_code_;
    std::shared_ptr<const texts> texts_;
};

// Either a value or the error that prevented it. value() throws the error; error() is the
// same object the throwing form would have thrown.
// A tagged union rather than std::variant<T, error>: variant's machinery cost about 2.5 MB of
// compiler memory per result type in every file that includes this (compile cost, issue 16).
// Copies and moves behave as variant's do for the library's types, whose moves never throw.
template <class T>
class result {
public:
    result(T value) : ok_(true) { ::new (static_cast<void*>(&value_)) T(std::move(value)); }
    result(safetensors::error failure) : ok_(false) {
        ::new (static_cast<void*>(&error_)) safetensors::error(std::move(failure));
    }
    result(const result& other) : ok_(other.ok_) {
        if (ok_)
            ::new (static_cast<void*>(&value_)) T(other.value_);
        else
            ::new (static_cast<void*>(&error_)) safetensors::error(other.error_);
    }
    result(result&& other) noexcept(std::is_nothrow_move_constructible<T>::value) : ok_(other.ok_) {
        if (ok_)
            ::new (static_cast<void*>(&value_)) T(std::move(other.value_));
        else
            ::new (static_cast<void*>(&error_)) safetensors::error(std::move(other.error_));
    }
    result& operator=(const result& other) {
        if (this == &other) return *this;
        if (ok_ && other.ok_) {
            value_ = other.value_;
        } else if (!ok_ && !other.ok_) {
            error_ = other.error_;
        } else {
            result copy(other);  // a throwing copy leaves *this as it was
            destroy();
            ::new (static_cast<void*>(this)) result(std::move(copy));
        }
        return *this;
    }
    result& operator=(result&& other) noexcept(std::is_nothrow_move_constructible<T>::value &&
                                               std::is_nothrow_move_assignable<T>::value) {
        if (this == &other) return *this;
        if (ok_ && other.ok_) {
            value_ = std::move(other.value_);
        } else if (!ok_ && !other.ok_) {
            error_ = std::move(other.error_);
        } else {
            destroy();
            ::new (static_cast<void*>(this)) result(std::move(other));
        }
        return *this;
    }
    ~result() { destroy(); }

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        if (!ok_) throw error_;
        return value_;
    }
    const T& value() const& {
        if (!ok_) throw error_;
        return value_;
    }
    T&& value() && {
        if (!ok_) throw error_;
        return std::move(value_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // The error when !ok(); when ok(), an error whose code() is errc::ok and whose texts are empty.
    const safetensors::error& error() const noexcept {
        if (ok_) return no_error();
        return error_;
    }

private:
    static const safetensors::error& no_error() noexcept {
        static const safetensors::error none(errc::ok, "");
        return none;
    }
    void destroy() noexcept {
        if (ok_)
            value_.~T();
        else
            error_.~error();
    }

    union {
        T value_;
        safetensors::error error_;
    };
    bool ok_;
};

namespace detail {

[[noreturn]] inline void throw_error(errc code, const std::string& message) {
    throw safetensors::error(code, message);
}
[[noreturn]] inline void throw_error(errc code, const std::string& message, const std::string& path,
                                     std::error_code system_code = {}) {
    throw safetensors::error(code, message, path, system_code);
}

// An errno value as the library reports it: std::generic_category().
inline std::error_code errno_code(int err) noexcept { return {err, std::generic_category()}; }

// e, now about path: path() is set and the message names the path (prefixed, quoted) unless
// it already does. An error that already has a path (a shard's, a temporary file's) is kept.
inline safetensors::error at_path(const safetensors::error& e, const std::string& path);

// Runs f(); an error it throws that names no path is rethrown naming path. Every public call
// that opens or writes a path runs through this, so each of its errors says which file.
template <class F>
auto about_path(const std::string& path, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const safetensors::error& e) {
        if (!e.path().empty()) throw;
        throw at_path(e, path);
    }
}

// Runs f() and turns a safetensors::error or std::bad_alloc into a result.
template <class F>
auto capture(F&& f) noexcept -> result<decltype(f())> {
    try {
        return result<decltype(f())>(f());
    } catch (const safetensors::error& e) {
        return e;
    } catch (const std::bad_alloc&) {
        return safetensors::error(errc::io_error, "out of memory", {}, errno_code(ENOMEM));
    } catch (const std::exception& e) {
        return safetensors::error(errc::io_error, e.what());
    }
}

// A name or value from an untrusted file, made safe to print: quoted, control and
// non-printable ASCII bytes escaped, and cut to about 200 bytes.
inline std::string quote(std::string_view text, std::size_t limit = 200) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve((text.size() < limit ? text.size() : limit) + 8);
    out.push_back('"');
    std::size_t used = 0;
    for (std::size_t i = 0; i < text.size(); ++i, ++used) {
        if (used >= limit) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(text[i]);
        // C1 controls (U+0080..U+009F, bytes C2 80..C2 9F) act on terminals too.
        bool c1 = c == 0xC2 && i + 1 < text.size() &&
                  static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                  static_cast<unsigned char>(text[i + 1]) <= 0x9F;
        if (c1) c = static_cast<unsigned char>(text[++i]);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20 || c == 0x7f || c1) {
                    out += c1 ? "\\u00" : "\\x";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));  // other UTF-8 passes through
                }
        }
    }
    out.push_back('"');
    return out;
}

inline safetensors::error at_path(const safetensors::error& e, const std::string& path) {
    const std::string quoted = quote(path);
    std::string message = e.message().find(quoted) == std::string::npos ? quoted + ": " + e.message() : e.message();
    return safetensors::error(e.code(), message, path, e.system_code());
}

} // namespace detail
} // namespace safetensors

namespace std {
template <>
struct is_error_code_enum<safetensors::errc> : true_type {};
} // namespace std
