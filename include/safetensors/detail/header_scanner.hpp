// safetensors-hpp: the fast reader of a header of the usual shape, straight into a header_table.
//
// Opening a real checkpoint shard spent about 87% of its instructions in nlohmann's lexer (a
// push_back per character, strtoull per number), and most of the rest in handing each token
// to a SAX handler as a std::string. This reader knows the header's shape: one object whose
// members are "__metadata__" (an object of strings, or null) and tensors, each an object with
// exactly the fields "dtype" (a known dtype name), "shape" and "data_offsets" (arrays of
// unsigned integers, two offsets), in any order, with any JSON whitespace. Strings are taken
// without escapes or control characters, numbers as at most 19 digits without a leading zero.
//
// It never reports an error. On anything else, valid or not (an unknown field, an escape, a
// wrong type, a duplicate field, trailing bytes), it stops and returns false, and the caller
// reads the whole text again with a fresh table through nlohmann (header_builder), whose
// events and error messages then decide. So a table it completes is exactly the table that
// path builds before its checks after the parse (header_builder::finish, shared by both);
// tests/fuzz/fuzz_header_scan.cpp checks that the two paths agree. It also makes the byte
// checks the other path makes first (sax_builder::check_bytes): outside strings only the
// structure's ASCII is taken, inside them UTF-8 is validated as it is met (utf8.hpp), and a
// NUL is a control byte; so a NUL, a byte order mark or invalid UTF-8 leaves the text to the
// other path, which reports it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../dtype.hpp"
#include "../header_table.hpp"
#include "checked.hpp"
#include "utf8.hpp"

// GCC and Clang on x86 with SSE2: sixteen bytes at a time (x86_vec.hpp, as utf8.hpp uses it).
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_vec.hpp"
#endif
#if defined(SAFETENSORS_DETAIL_X86_VEC) && defined(__SSE2__)
#define SAFETENSORS_DETAIL_SCAN_SSE2 1
#else
#define SAFETENSORS_DETAIL_SCAN_SSE2 0
#endif
// The few steps run for every token, inlined into the loops that call them.
#if defined(__GNUC__) || defined(__clang__)
#define SAFETENSORS_DETAIL_SCAN_INLINE __attribute__((always_inline)) inline
#else
#define SAFETENSORS_DETAIL_SCAN_INLINE inline
#endif

namespace safetensors::detail {

// A dtype name of at most eight characters as one integer: its bytes, little-endian, zero above.
struct packed_dtype {
    std::uint64_t name;
    dtype type;
};
constexpr std::uint64_t pack_name(std::string_view name) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = name.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(name[i]);
    return v;
}
// Every dtype of at most seven characters, the usual ones first.
inline constexpr packed_dtype packed_dtypes[] = {
    {pack_name("BF16"), dtype::BF16}, {pack_name("F16"), dtype::F16}, {pack_name("F32"), dtype::F32},
    {pack_name("I64"), dtype::I64}, {pack_name("F64"), dtype::F64}, {pack_name("I32"), dtype::I32},
    {pack_name("U8"), dtype::U8}, {pack_name("I8"), dtype::I8}, {pack_name("BOOL"), dtype::BOOL},
    {pack_name("I16"), dtype::I16}, {pack_name("U16"), dtype::U16}, {pack_name("U32"), dtype::U32},
    {pack_name("U64"), dtype::U64}, {pack_name("C64"), dtype::C64}, {pack_name("F8_E4M3"), dtype::F8_E4M3},
    {pack_name("F8_E5M2"), dtype::F8_E5M2}, {pack_name("F8_E8M0"), dtype::F8_E8M0},
    {pack_name("F6_E2M3"), dtype::F6_E2M3}, {pack_name("F6_E3M2"), dtype::F6_E3M2}, {pack_name("F4"), dtype::F4},
};

class header_scanner {
public:
    // Reads text into table (empty; its pools reserved by the caller). True when the table is
    // complete; false when text is outside the shape above (the table is then half-built).
    static bool scan(std::string_view text, header_table& table) {
        offset_walk walk;
        return scan(text, table, walk);
    }

    // The reference's offset walk (header_builder::finish), made while reading, since writers
    // emit tensors in offset order: in_order stays true while every tensor, in file order,
    // begins where the one before it ended and holds exactly what its dtype and shape need;
    // end is where the last one ended. The builder then skips its own walk.
    struct offset_walk {
        std::uint64_t end = 0;
        bool in_order = true;
    };
    static bool scan(std::string_view text, header_table& table, offset_walk& walk) {
        header_scanner scanner(text, table, walk);
        return scanner.header();
    }

private:
    header_scanner(std::string_view text, header_table& table, offset_walk& walk) noexcept
        : p_(text.data()), end_(text.data() + text.size()), t_(table), walk_(walk) {}

    bool header() {
        skip_space();
        if (!take('{')) return false;
        skip_space();
        if (take('}')) return at_end();
        bool metadata_seen = false;
        for (;;) {
            std::string_view key;
            if (!member_key(key)) return false;
            if (key == "__metadata__") {
                if (metadata_seen || !metadata()) return false;  // a second one is the builder's error
                metadata_seen = true;
            } else if (!tensor(key)) {
                return false;
            }
            const after next = next_member();
            if (next != after::comma) return next == after::close && at_end();
        }
    }

    // "__metadata__": null, or an object whose values are all strings.
    bool metadata() {
        if (end_ - p_ >= 4 && std::memcmp(p_, "null", 4) == 0) {
            p_ += 4;  // "nullx" fails at the separator that must follow
            return true;
        }
        if (!take('{')) return false;
        auto& metadata = t_.metadata_.emplace();
        skip_space();
        if (take('}')) return true;
        for (;;) {
            std::string_view key, value;
            if (!member_key(key) || !string(value)) return false;
            metadata.append_unchecked(std::string(key), std::string(value));
            const after next = next_member();
            if (next != after::comma) return next == after::close;
        }
    }

    enum field_bit : unsigned { dtype_bit = 1, shape_bit = 2, offsets_bit = 4, all_fields = 7 };

    bool tensor(std::string_view name) {
        if (name.size() > UINT32_MAX || t_.names_.size() > UINT32_MAX - name.size()) return false;
        table_entry entry{};
        entry.name_offset = narrow<std::uint32_t>(t_.names_.size());
        entry.name_size = narrow<std::uint32_t>(name.size());
        t_.names_.append(name.data(), name.size());
        const std::size_t dims_start = t_.dims_.size();
        dtype type = dtype::BOOL;
        std::uint64_t offsets[2] = {0, 0};
        const char* const start = p_;
        if (!compact_fields(type, offsets)) {
            p_ = start;
            t_.dims_.resize(dims_start);
            if (!any_fields(type, offsets)) return false;
        }
        const std::size_t rank = t_.dims_.size() - dims_start;
        if (dims_start > UINT32_MAX || rank > table_entry::max_rank) return false;
        entry.dims_offset = narrow<std::uint32_t>(dims_start);
        entry.set_rank_and_dtype(narrow<std::uint32_t>(rank), type);
        entry.begin = offsets[0];
        entry.end = offsets[1];
        t_.entries_.push_back(entry);
        if (walk_.in_order) walk_.in_order = walk_on(entry, span<const std::uint64_t>(t_.dims_.data() + dims_start, rank));
        return true;
    }

    // header_builder::check_entry's test, true where that would not throw.
    bool walk_on(const table_entry& e, span<const std::uint64_t> shape) noexcept {
        std::uint64_t bytes = 0;
        if (e.begin != walk_.end || e.end < e.begin || checked_byte_size(e.dtype(), shape, bytes) != size_status::ok ||
            e.end - e.begin != bytes)
            return false;
        walk_.end = e.end;
        return true;
    }

    // The entry byte for byte as writers emit it, which is almost always what comes:
    // {"dtype":"BF16","shape":[1024,4096],"data_offsets":[0,8388608]}
    bool compact_fields(dtype& type, std::uint64_t (&offsets)[2]) {
        if (!literal("{\"dtype\":\"") || !dtype_name(type) || !literal("\",\"shape\":[")) return false;
        if (!take(']')) {
            for (;;) {
                std::uint64_t n = 0;
                if (!number(n)) return false;
                t_.dims_.push_back(n);
                if (take(']')) break;
                if (!take(',')) return false;
            }
        }
        if (!literal(",\"data_offsets\":[") || !(same_as_last_end(offsets[0]) || number(offsets[0])) || !take(','))
            return false;
        const char* const end_text = p_;
        if (!number(offsets[1]) || !literal("]}")) return false;
        remember_end(end_text, offsets[1]);
        return true;
    }

    // Writers emit tensors in offset order, so a begin offset is almost always spelled exactly
    // as the end offset before it: then its digits are compared, not converted again.
    SAFETENSORS_DETAIL_SCAN_INLINE void remember_end(const char* text, std::uint64_t value) noexcept {
        const auto digits = static_cast<std::size_t>(p_ - 2 - text);
        last_end_digits_ = digits < 16 ? digits : 0;
        last_end_text_ = text;
        last_end_ = value;
    }
    SAFETENSORS_DETAIL_SCAN_INLINE bool same_as_last_end(std::uint64_t& out) noexcept {
        const std::size_t digits = last_end_digits_;
        if (digits == 0 || end_ - p_ < 16) return false;
#if SAFETENSORS_DETAIL_SCAN_SSE2
        const unsigned equal = equal_mask(p_, last_end_text_);
        if ((~equal & ((1u << digits) - 1)) != 0) return false;
#else
        if (std::memcmp(p_, last_end_text_, digits) != 0) return false;
#endif
        // A longer number ("80" after "8") leaves a digit where the caller takes the comma.
        p_ += digits;
        out = last_end_;
        return true;
    }

    // The fields in any order, with any whitespace.
    bool any_fields(dtype& type, std::uint64_t (&offsets)[2]) {
        if (!take('{')) return false;
        skip_space();
        unsigned seen = 0;
        for (;;) {
            std::string_view field;
            if (!member_key(field)) return false;
            unsigned bit = 0;
            if (field == "dtype") {
                bit = dtype_bit;
                std::string_view value;
                if (!string(value)) return false;
                const auto parsed = parse_dtype(value);
                if (!parsed) return false;
                type = *parsed;
            } else if (field == "shape") {
                bit = shape_bit;
                if (!shape()) return false;
            } else if (field == "data_offsets") {
                bit = offsets_bit;
                if (!two_numbers(offsets)) return false;
            } else {
                return false;  // an unknown field: the builder skips it
            }
            if (seen & bit) return false;
            seen |= bit;
            const after next = next_member();
            if (next == after::close) break;
            if (next != after::comma) return false;
        }
        return seen == all_fields;
    }

    // A dtype name and its closing quote, for names of at most seven characters (all but the
    // two FNUZ ones, which take the general path): one eight-byte load, then one comparison
    // per known name.
    bool dtype_name(dtype& type) noexcept {
        if (end_ - p_ < 8) return false;
        std::uint64_t word;
        std::memcpy(&word, p_, 8);
        const std::uint64_t flags = string_end_flags(word);
        if (flags == 0) return false;
        const unsigned size = lowest_flagged_byte(flags);
        if (p_[size] != '"') return false;
        const std::uint64_t name = size == 0 ? 0 : word & (~std::uint64_t{0} >> (64 - 8 * size));
        for (const packed_dtype& known : packed_dtypes) {
            if (known.name == name) {
                type = known.type;
                p_ += size;  // the quote is the next literal's
                return true;
            }
        }
        return false;
    }

    // The exact bytes of text (a literal) at p_, taken.
    template <std::size_t N>
    bool literal(const char (&text)[N]) noexcept {
        constexpr std::size_t size = N - 1;
        if (static_cast<std::size_t>(end_ - p_) < size || std::memcmp(p_, text, size) != 0) return false;
        p_ += size;
        return true;
    }

    // [n, ...] onto the table's dims.
    bool shape() {
        if (!take('[')) return false;
        skip_space();
        if (take(']')) return true;
        for (;;) {
            std::uint64_t n = 0;
            if (!number(n)) return false;
            t_.dims_.push_back(n);
            skip_space();
            if (take(']')) return true;
            if (!take(',')) return false;
            skip_space();
        }
    }

    // [a, b]: exactly two numbers.
    bool two_numbers(std::uint64_t (&out)[2]) {
        if (!take('[')) return false;
        skip_space();
        if (!number(out[0])) return false;
        skip_space();
        if (!take(',')) return false;
        skip_space();
        if (!number(out[1])) return false;
        skip_space();
        return take(']');
    }

    // A member's key and the colon after it, and the space up to its value.
    bool member_key(std::string_view& key) {
        if (!string(key)) return false;
        skip_space();
        if (!take(':')) return false;
        skip_space();
        return true;
    }

    // What follows a member: a comma (taken, with the space after it), the closing brace
    // (taken), or anything else.
    enum class after { comma, close, other };
    after next_member() {
        skip_space();
        if (take(',')) {
            skip_space();
            return after::comma;
        }
        return take('}') ? after::close : after::other;
    }

    bool at_end() {
        skip_space();
        return p_ == end_;
    }

    bool take(char c) noexcept {
        if (p_ == end_ || *p_ != c) return false;
        ++p_;
        return true;
    }

    // Compact JSON has no space: one comparison, since every space character is <= ' '.
    void skip_space() noexcept {
        if (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ') skip_space_slowly();
    }
    void skip_space_slowly() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    // A string at p_ (its opening quote), as a view of the text; false for an escape, a
    // control character, invalid UTF-8 or no closing quote.
    bool string(std::string_view& out) noexcept {
        if (!take('"')) return false;
        const char* begin = p_;
        for (;;) {
            skip_plain_bytes();
            if (p_ == end_) return false;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') break;
            if (c < 0x80) return false;  // '\\' or a control byte
            const std::size_t n = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p_), 0,
                                                       static_cast<std::size_t>(end_ - p_));
            if (n == 0) return false;
            p_ += n;
        }
        out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
        ++p_;
        return true;
    }

    // Moves p_ to the first '"', '\\', control or non-ASCII byte, or to end_.
    SAFETENSORS_DETAIL_SCAN_INLINE void skip_plain_bytes() noexcept {
#if SAFETENSORS_DETAIL_SCAN_SSE2
        while (end_ - p_ >= 16) {
            const unsigned flags = string_end_mask(p_);
            if (flags != 0) {
                p_ += __builtin_ctz(flags);
                return;
            }
            p_ += 16;
        }
#endif
        // Eight bytes at a time; the lowest flagged byte is the first one looked for.
        while (end_ - p_ >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p_, 8);
            const std::uint64_t flags = string_end_flags(word);
            if (flags != 0) {
                p_ += lowest_flagged_byte(flags);
                return;
            }
            p_ += 8;
        }
        while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20 &&
               static_cast<unsigned char>(*p_) < 0x80)
            ++p_;
    }

    // The high bit of each byte of word that is '"', '\\', below 0x20 or not ASCII, exact up to
    // the first such byte (a borrow can only flag bytes above a flagged one).
    SAFETENSORS_DETAIL_SCAN_INLINE static std::uint64_t string_end_flags(std::uint64_t word) noexcept {
        constexpr std::uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
        const std::uint64_t quote = word ^ (ones * '"');
        const std::uint64_t backslash = word ^ (ones * '\\');
        return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((word - ones * 0x20) & ~word) | word) &
               highs;
    }

    static unsigned lowest_flagged_byte(std::uint64_t flags) noexcept {
#if defined(__GNUC__)
        return static_cast<unsigned>(__builtin_ctzll(flags)) / 8;
#else
        unsigned i = 0;
        while (!(flags & 0x80u)) {
            flags >>= 8;
            ++i;
        }
        return i;
#endif
    }

    // "0", or a nonzero digit and at most 18 more. What follows is checked by the caller,
    // which wants a separator: a fraction, an exponent or a 20th digit fails there.
    SAFETENSORS_DETAIL_SCAN_INLINE bool number(std::uint64_t& out) noexcept {
        if (end_ - p_ < 16) return number_slowly(out);
        // Up to fifteen digits: counted in sixteen bytes, converted eight at a time.
#if SAFETENSORS_DETAIL_SCAN_SSE2
        const unsigned digits = static_cast<unsigned>(__builtin_ctz(~digit_mask(p_)));
#else
        std::uint64_t first;
        std::memcpy(&first, p_, 8);
        unsigned digits = leading_digits(first);
        if (digits == 8) {
            std::memcpy(&first, p_ + 8, 8);
            digits += leading_digits(first);
        }
#endif
        if (digits == 0 || digits == 16 || (digits > 1 && *p_ == '0')) return digits == 16 && number_slowly(out);
        std::uint64_t word;
        std::memcpy(&word, p_, 8);
        std::uint64_t v;
        if (digits <= 8) {
            v = digits_value(word, digits);
        } else {
            std::uint64_t low;
            std::memcpy(&low, p_ + 8, 8);
            v = digits_value(word, 8) * power_of_ten[digits - 8] + digits_value(low, digits - 8);
        }
        p_ += digits;
        out = v;
        return true;
    }

#if SAFETENSORS_DETAIL_SCAN_SSE2
    // Bit i set when p[i] is an ASCII digit, for the sixteen bytes at p.
    static unsigned digit_mask(const char* p) noexcept {
        const auto bytes = reinterpret_cast<x86::v16qu>(x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(p)));
        const x86::v16qu offset = bytes - static_cast<unsigned char>('0');
        return static_cast<unsigned>(x86::mm_movemask_epi8(reinterpret_cast<x86::m128i>(offset <= 9)));
    }
    // Bit i set when a[i] == b[i], for the sixteen bytes at a and b.
    static unsigned equal_mask(const char* a, const char* b) noexcept {
        const auto x = reinterpret_cast<x86::v16qu>(x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(a)));
        const auto y = reinterpret_cast<x86::v16qu>(x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(b)));
        return static_cast<unsigned>(x86::mm_movemask_epi8(reinterpret_cast<x86::m128i>(x == y)));
    }
    // Bit i set when p[i] is '"', '\\', a control byte or not ASCII, for the sixteen bytes at p.
    static unsigned string_end_mask(const char* p) noexcept {
        const auto bytes = reinterpret_cast<x86::v16qu>(x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(p)));
        const auto flagged = (bytes == static_cast<unsigned char>('"')) | (bytes == static_cast<unsigned char>('\\')) |
                             (bytes < static_cast<unsigned char>(0x20)) | (bytes >= static_cast<unsigned char>(0x80));
        return static_cast<unsigned>(x86::mm_movemask_epi8(reinterpret_cast<x86::m128i>(flagged)));
    }
#endif

    bool number_slowly(std::uint64_t& out) noexcept {
        const char* begin = p_;
        std::uint64_t v = 0;
        while (p_ != end_ && static_cast<unsigned char>(*p_ - '0') < 10) {
            v = v * 10 + static_cast<unsigned char>(*p_ - '0');
            ++p_;
        }
        const auto digits = p_ - begin;
        if (digits == 0 || digits > 19 || (digits > 1 && *begin == '0')) return false;
        out = v;
        return true;
    }

    static constexpr std::uint64_t power_of_ten[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

    // How many of word's bytes, from the first, are ASCII digits (0 to 8).
    SAFETENSORS_DETAIL_SCAN_INLINE static unsigned leading_digits(std::uint64_t word) noexcept {
        constexpr std::uint64_t nibbles = 0xF0F0F0F0F0F0F0F0u, threes = 0x3030303030303030u;
        // Zero exactly for the digits: high nibble 3, and still 3 after adding 6 ('0'-'9' only).
        // A carry out of a byte only comes from a byte >= 0xFA, itself no digit.
        const std::uint64_t other = ((word & nibbles) ^ threes) | (((word + 0x0606060606060606u) & nibbles) ^ threes);
        constexpr std::uint64_t lows = 0x7F7F7F7F7F7F7F7Fu;
        const std::uint64_t nonzero = (((other & lows) + lows) | other) & ~lows;
        return nonzero == 0 ? 8 : lowest_flagged_byte(nonzero);
    }

    // The value of word's first digits (1 to 8 ASCII digits): the digits moved to the top, so
    // that the zero bytes below are leading zeros, then combined pairwise (2, 4, 8 digits).
    SAFETENSORS_DETAIL_SCAN_INLINE static std::uint64_t digits_value(std::uint64_t word, unsigned digits) noexcept {
        std::uint64_t v = (word & 0x0F0F0F0F0F0F0F0Fu) << (8 * (8 - digits));
        v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFu;
        v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFu;
        return (v * 10000 + (v >> 32)) & 0xFFFFFFFFu;
    }

    const char* p_;
    const char* end_;
    header_table& t_;
    offset_walk& walk_;
    // The last compact entry's end offset: its digits in the text (0: none to compare) and value.
    const char* last_end_text_ = nullptr;
    std::size_t last_end_digits_ = 0;
    std::uint64_t last_end_ = 0;
};

} // namespace safetensors::detail
