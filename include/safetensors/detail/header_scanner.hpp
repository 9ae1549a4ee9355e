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
// The usual member, a plain ASCII name and the compact entry writers emit, is taken whole
// (fast_tensor): the name copied and compared with the one before it as it is searched, the
// entry's head compared whole with the last one, its shape looked up by its text among the
// shapes read before, and the offset walk and name order noted on the way (checks), so that
// the builder makes no pass over the table after the parse when the file is in order.
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
#include "inlining.hpp"
#include "name_less.hpp"
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
    // Reads text into table (empty). True when the table is complete; false when text is
    // outside the shape above (the table is then half-built).
    static bool scan(std::string_view text, header_table& table) {
        checks done;
        return scan(text, table, done);
    }

    // What the scanner checks while reading, so that header_builder::finish need not pass
    // over the table again:
    // - the reference's offset walk, since writers emit tensors in offset order: walk_in_order
    //   stays true while every tensor, in file order, begins where the one before it ended and
    //   holds exactly what its dtype and shape need; walk_end is where the last one ended;
    // - the name index's order, since writers emit names sorted: names_increasing stays true
    //   while every name is bytewise greater than the one before it (so sorted and unique).
    struct checks {
        std::uint64_t walk_end = 0;
        bool walk_in_order = true;
        bool names_increasing = true;
    };
    static bool scan(std::string_view text, header_table& table, checks& done) {
        table.names_.reserve(text.size());  // the fast path copies names in place (fast_tensor)
        header_scanner scanner(text, table, done);
        return scanner.header();
    }

private:
    header_scanner(std::string_view text, header_table& table, checks& done) noexcept
        : p_(text.data()), end_(text.data() + text.size()), t_(table), checks_(done) {}

    SAFETENSORS_DETAIL_HOT bool header() {
        skip_space();
        if (!take('{')) return false;
        skip_space();
        if (take('}')) return at_end();
        bool metadata_seen = false;
        for (;;) {
            if (!fast_tensors()) {
                std::string_view key;
                if (!member_key(key)) return false;
                if (key == "__metadata__") {
                    if (metadata_seen || !metadata()) return false;  // a second one is the builder's error
                    metadata_seen = true;
                } else if (!tensor(key)) {
                    return false;
                }
            }
            const after next = next_member();
            if (next != after::comma) return next == after::close && at_end();
        }
    }

    // "__metadata__": null, or an object whose values are all strings.
    SAFETENSORS_DETAIL_HOT bool metadata() {
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
        const std::size_t dims_start = t_.dims_.size();
        dtype type = dtype::BOOL;
        std::uint64_t offsets[2] = {0, 0};
        const char* const start = p_;
        if (!compact_fields(type, offsets)) {
            p_ = start;
            t_.dims_.truncate(dims_start);
            if (!any_fields(type, offsets)) return false;
        }
        std::uint64_t count = 0;
        const bool overflow =
            checked_element_count(span<const std::uint64_t>(t_.dims_.data() + dims_start, t_.dims_.size() - dims_start),
                                  count) != size_status::ok;
        const std::size_t name_offset = t_.names_.size();
        t_.names_.append(name.data(), name.size());
        if (!add_entry(name_offset, name.size(), dims_start, t_.dims_.size() - dims_start, type, offsets, count, overflow))
            return false;
        if (previous_name_ != nullptr && checks_.names_increasing)
            checks_.names_increasing = name_less(std::string_view(previous_name_, previous_name_size_), name);
        previous_name_ = name.data();
        previous_name_size_ = name.size();
        return true;
    }

    // The table entry of a tensor whose name is at name_offset in the pool and whose shape is
    // the rank dimensions at dims_start, with count elements (overflow: more than 64 bits hold);
    // then the offset walk.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool add_entry(std::size_t name_offset, std::size_t name_size, std::size_t dims_start,
                                                  std::size_t rank, dtype type, const std::uint64_t (&offsets)[2],
                                                  std::uint64_t count, bool overflow) {
        if (name_offset + name_size > UINT32_MAX || dims_start > UINT32_MAX || rank > table_entry::max_rank) return false;
        table_entry entry{};
        entry.name_offset = narrow<std::uint32_t>(name_offset);
        entry.name_size = narrow<std::uint32_t>(name_size);
        entry.dims_offset = narrow<std::uint32_t>(dims_start);
        entry.set_rank_and_dtype(narrow<std::uint32_t>(rank), type);
        entry.begin = offsets[0];
        entry.end = offsets[1];
        t_.entries_.push_back(entry);
        if (checks_.walk_in_order) checks_.walk_in_order = walk_on(entry, count, overflow);
        return true;
    }

#if SAFETENSORS_DETAIL_SCAN_SSE2
    // Members of the usual shape one after another (fast_tensor), with a bare comma between
    // them, in one loop. True when one or more were taken: p_ is then after the last one.
    SAFETENSORS_DETAIL_HOT bool fast_tensors() {
        if (!fast_tensor()) return false;
        while (*p_ == ',') {  // fast_tensor leaves bytes after a member it takes
            ++p_;
            if (!fast_tensor()) {
                --p_;
                break;
            }
        }
        return true;
    }

    // The usual member taken whole, sixteen bytes at a time: a name of plain ASCII, then the
    // compact entry, {"dtype":"BF16","shape":[1024,4096],"data_offsets":[0,8388608]}. The
    // name is copied into the pool and compared with the one before it as it is searched, the
    // entry's fixed parts are compared whole, and the offset walk is made on the way. False,
    // with nothing taken (p_ and the table as they were), for any other member; the general
    // path then reads it, with the same result for a member this one would take.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool fast_tensor() {
        const char* p = p_;
        if (end_ - p < fast_room || *p != '"') return false;
        const char* const name = p + 1;
        bool increasing = true;
        p = fast_name(name, increasing);
        if (p == nullptr) return false;
        const auto size = static_cast<std::size_t>(p - name);
        dtype type = dtype::BOOL;
        if (!fast_head(p, type)) return false;
        const std::size_t dims_end = t_.dims_.size();  // the pool's size before this shape
        std::size_t dims_start = dims_end, rank = 0;
        std::uint64_t count = 1;  // the shape's element count, for the walk
        bool overflow = false;
        std::uint64_t offsets[2] = {0, 0};
        if (!fast_dims(p, dims_start, rank, count, overflow) || !fast_offsets(p, offsets) ||
            !add_entry(t_.names_.size(), size, dims_start, rank, type, offsets, count, overflow)) {
            if (t_.dims_.size() != dims_end) forget_shapes_from(dims_end);
            t_.dims_.truncate(dims_end);
            return false;
        }
        t_.names_.grow(size);  // the copy fast_name made
        if (!increasing) checks_.names_increasing = false;
        previous_name_ = name;
        previous_name_size_ = size;
        p_ = p;
        return true;
    }

    // A tensor's name of plain ASCII from its first byte: copied into the pool after the names
    // (not yet counted in it) and compared with the name before it while it is searched.
    // Returns its closing quote, or null for any other name (and for "__metadata__");
    // increasing: bytewise greater than the name before it.
    SAFETENSORS_DETAIL_ALWAYS_INLINE const char* fast_name(const char* name, bool& increasing) noexcept {
        // The pool holds only names spelled in the text before this one, and its capacity is
        // the text's size (scan), so a chunk stored at the name's place in the pool ends before
        // its capacity as the chunk read ends before end_. The name before this one is in the
        // text too, and reading past it stays before the chunk read here.
        char* const copy = t_.names_.unused();
        const char* const end = end_;  // a local: the stores below may alias any member
        const char* const previous = previous_name_;
        std::size_t differ = SIZE_MAX;  // where the name first differs from the one before it
        const char* q = name;
        unsigned flags = 0;
        for (;;) {
            const x86::m128i chunk = load16(q);
            const auto at = static_cast<std::size_t>(q - name);
            x86::mm_storeu_si128(reinterpret_cast<x86::m128i_u*>(copy + at), chunk);
            if (differ == SIZE_MAX && previous != nullptr) {
                const unsigned unequal = ~equal_mask(chunk, load16(previous + at)) & 0xFFFFu;
                if (unequal != 0) differ = at + static_cast<unsigned>(__builtin_ctz(unequal));
            }
            flags = string_end_mask(chunk);
            if (flags != 0) break;
            q += 16;
            if (end - q < fast_room) return nullptr;
        }
        q += __builtin_ctz(flags);
        if (*q != '"' || end - q < fast_room) return nullptr;
        const auto size = static_cast<std::size_t>(q - name);
        if (size == 12 && std::memcmp(name, "__metadata__", 12) == 0) return nullptr;
        // At the first difference inside both names, or the longer one.
        const std::size_t previous_size = previous_name_size_;
        increasing = previous == nullptr ||
                     (differ < size && differ < previous_size
                          ? static_cast<unsigned char>(name[differ]) > static_cast<unsigned char>(previous[differ])
                          : previous_size < size);
        return q;
    }

    // Bytes a fast member reads without checking: 32 at its name's closing quote, 16 at each
    // number, and at most 50 from the shape's end to the entry's.
    static constexpr std::ptrdiff_t fast_room = 64;

    // ":{"dtype":"BF16","shape":[ from the name's closing quote to the shape's first byte:
    // compared whole with the last head read (the same bytes but for the dtype), or read in
    // parts and kept for the next entry.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool fast_head(const char*& p, dtype& type) noexcept {
        const x86::m128i low = load16(p), high = load16(p + 16);
        const unsigned equal = equal_mask(low, head_[0]) | (equal_mask(high, head_[1]) << 16);
        if ((equal & head_mask_) == head_mask_) {
            p += head_size_;
            type = head_type_;
            return true;
        }
        const char* const saved = p_;
        p_ = p;
        const bool read = literal("\":{\"dtype\":\"") && dtype_name(type) && literal("\",\"shape\":[");
        const char* const head_end = p_;
        p_ = saved;
        if (!read) return false;
        head_[0] = low;
        head_[1] = high;
        head_size_ = static_cast<unsigned>(head_end - p);  // at most 30
        head_mask_ = (1u << head_size_) - 1;
        head_type_ = type;
        p = head_end;
        return true;
    }

    // The dimensions and the closing bracket (the opening one is the head's), with the
    // element count: rank dimensions at dims_start in the pool. A checkpoint has few distinct
    // shapes, each spelled the same way every time: a shape of at most fifteen bytes is looked
    // up by its text in a small cache of those read before (shape_slot), whose dimensions the
    // pool already holds, and read, added to the pool and kept there when it is not found.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool fast_dims(const char*& p, std::size_t& dims_start, std::size_t& rank,
                                                  std::uint64_t& count, bool& overflow) {
        const x86::m128i text = load16(p);
        const unsigned closes = equal_mask(text, x86::m128i{0x5D5D5D5D5D5D5D5D, 0x5D5D5D5D5D5D5D5D});  // ']'
        if (closes == 0) {
            const bool read = read_dims(p, count, overflow);
            rank = t_.dims_.size() - dims_start;
            return read;
        }
        const unsigned size = static_cast<unsigned>(__builtin_ctz(closes)) + 1;  // with the bracket
        const unsigned mask = (1u << size) - 1;
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (size < 8) word &= (std::uint64_t{1} << (8 * size)) - 1;
        shape_slot& slot = shape_slots_[(word * 0x9E3779B97F4A7C15u) >> (64 - shape_slot_bits)];
        if (slot.mask == mask && (equal_mask(text, slot.text) & mask) == mask) {
            dims_start = slot.dims_start;
            rank = slot.rank;
            count = slot.count;
            p += size;
            return true;
        }
        const char* const start = p;
        if (!read_dims(p, count, overflow)) return false;
        rank = t_.dims_.size() - dims_start;
        if (overflow || static_cast<std::size_t>(p - start) != size) return true;
        slot.text = text;
        slot.mask = mask;
        slot.rank = rank;  // at most eight: "1,1,1,1,1,1,1,1]" is sixteen bytes
        slot.dims_start = dims_start;
        slot.count = count;
        return true;
    }
    // A member that fast_tensor gave back had added the dimensions from dims_end on, and they
    // are about to be dropped: no shape may be found there any more. (The general path then
    // reads the member again and adds the same dimensions at the same place, or the scan
    // fails; the cache does not count on it.)
    SAFETENSORS_DETAIL_COLD void forget_shapes_from(std::size_t dims_end) noexcept {
        for (shape_slot& slot : shape_slots_)
            if (slot.dims_start >= dims_end) slot.mask = 0;
    }
    SAFETENSORS_DETAIL_HOT bool read_dims(const char*& p, std::uint64_t& count, bool& overflow) {
        if (*p == ']') {
            ++p;
            return true;
        }
        for (;;) {
            std::uint64_t n = 0;
            if (end_ - p < fast_room || !fast_number(p, n)) return false;
            t_.dims_.push_back(n);
            overflow |= !checked_mul(count, n, count);
            const char c = *p++;
            if (c == ']') return true;
            if (c != ',') return false;
        }
    }

    // ,"data_offsets":[a,b]} after the shape.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool fast_offsets(const char*& p, std::uint64_t (&offsets)[2]) noexcept {
        static constexpr char key[17] = {',', '"', 'd', 'a', 't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '['};
        if (end_ - p < fast_room || equal_mask(load16(p), load16(key)) != 0xFFFFu || p[16] != '[') return false;
        p += 17;
        if (!(same_as_last_end(p, offsets[0]) || fast_number(p, offsets[0])) || *p != ',') return false;
        const char* const end_text = ++p;
        if (!fast_number(p, offsets[1]) || p[0] != ']' || p[1] != '}') return false;
        remember_end(end_text, p, offsets[1]);
        p += 2;
        return true;
    }

    // A number of one to fifteen digits at p, with sixteen bytes readable there; anything
    // else (longer numbers too) is the general path's.
    SAFETENSORS_DETAIL_ALWAYS_INLINE static bool fast_number(const char*& p, std::uint64_t& out) noexcept {
        const auto digits = static_cast<unsigned>(__builtin_ctz(~digit_mask(p)));
        if (digits - 1 >= 15 || (digits > 1 && *p == '0')) return false;
        out = digits_value_at(p, digits);
        p += digits;
        return true;
    }

    static x86::m128i load16(const char* p) noexcept {
        return x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(p));
    }
    static unsigned equal_mask(x86::m128i a, x86::m128i b) noexcept {
        return static_cast<unsigned>(x86::mm_movemask_epi8(x86::mm_cmpeq_epi8(a, b)));
    }

    // A shape read before: its text up to and with the closing bracket (mask: those bytes; 0:
    // an empty slot), where its dimensions are in the pool (entries with this shape share
    // them) and their product (without overflow).
    struct shape_slot {
        x86::m128i text = {};
        unsigned mask = 0;
        std::size_t rank = 0;
        std::size_t dims_start = 0;
        std::uint64_t count = 0;
    };
    static constexpr unsigned shape_slot_bits = 3;
    shape_slot shape_slots_[1u << shape_slot_bits];

    // The last head read in parts; none yet: a mask that no head matches (its first byte is
    // the name's closing quote, never the zero kept).
    x86::m128i head_[2] = {};
    unsigned head_size_ = 0;
    unsigned head_mask_ = 1;
    dtype head_type_ = dtype::BOOL;
#else
    bool fast_tensors() noexcept { return false; }
#endif

    // header_builder::check_entry's test, true where that would not throw (checked_byte_size
    // from the shape's element count).
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool walk_on(const table_entry& e, std::uint64_t count, bool overflow) noexcept {
        std::uint64_t bits = 0;
        if (overflow || e.begin != checks_.walk_end || e.end < e.begin || !checked_mul(count, bit_size(e.dtype()), bits) ||
            bits % 8 != 0 || e.end - e.begin != bits / 8)
            return false;
        checks_.walk_end = e.end;
        return true;
    }

    // The entry byte for byte as writers emit it, which is almost always what comes:
    // {"dtype":"BF16","shape":[1024,4096],"data_offsets":[0,8388608]}
    SAFETENSORS_DETAIL_HOT bool compact_fields(dtype& type, std::uint64_t (&offsets)[2]) {
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
        if (!literal(",\"data_offsets\":[") ||
            !((end_ - p_ >= 16 && same_as_last_end(p_, offsets[0])) || number(offsets[0])) || !take(','))
            return false;
        const char* const end_text = p_;
        if (!number(offsets[1]) || !literal("]}")) return false;
        remember_end(end_text, p_ - 2, offsets[1]);
        return true;
    }

    // Writers emit tensors in offset order, so a begin offset is almost always spelled exactly
    // as the end offset before it: then its digits are compared, not converted again.
    SAFETENSORS_DETAIL_ALWAYS_INLINE void remember_end(const char* text, const char* text_end, std::uint64_t value) noexcept {
        const auto digits = static_cast<std::size_t>(text_end - text);
        last_end_digits_ = digits < 16 ? digits : 0;
        last_end_text_ = text;
        last_end_ = value;
    }
    // At p, with sixteen bytes readable there.
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool same_as_last_end(const char*& p, std::uint64_t& out) const noexcept {
        const std::size_t digits = last_end_digits_;
        if (digits == 0) return false;
#if SAFETENSORS_DETAIL_SCAN_SSE2
        const unsigned equal = equal_mask(load16(p), load16(last_end_text_));
        if ((~equal & ((1u << digits) - 1)) != 0) return false;
#else
        if (std::memcmp(p, last_end_text_, digits) != 0) return false;
#endif
        // A longer number ("80" after "8") leaves a digit where the caller takes the comma.
        p += digits;
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
    SAFETENSORS_DETAIL_HOT bool dtype_name(dtype& type) noexcept {
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
    SAFETENSORS_DETAIL_HOT bool two_numbers(std::uint64_t (&out)[2]) {
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
    SAFETENSORS_DETAIL_HOT void skip_space() noexcept {
        if (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ') skip_space_slowly();
    }
    void skip_space_slowly() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    // A string at p_ (its opening quote), as a view of the text; false for an escape, a
    // control character, invalid UTF-8 or no closing quote.
    SAFETENSORS_DETAIL_HOT bool string(std::string_view& out) noexcept {
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
    SAFETENSORS_DETAIL_ALWAYS_INLINE void skip_plain_bytes() noexcept {
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
    SAFETENSORS_DETAIL_ALWAYS_INLINE static std::uint64_t string_end_flags(std::uint64_t word) noexcept {
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
    SAFETENSORS_DETAIL_ALWAYS_INLINE bool number(std::uint64_t& out) noexcept {
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
        out = digits_value_at(p_, digits);
        p_ += digits;
        return true;
    }

    // The value of the 1 to 15 digits at p, sixteen bytes readable there: eight at a time.
    SAFETENSORS_DETAIL_ALWAYS_INLINE static std::uint64_t digits_value_at(const char* p, unsigned digits) noexcept {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (digits <= 8) return digits_value(word, digits);
        std::uint64_t low;
        std::memcpy(&low, p + 8, 8);
        return digits_value(word, 8) * power_of_ten[digits - 8] + digits_value(low, digits - 8);
    }

#if SAFETENSORS_DETAIL_SCAN_SSE2
    // Bit i set when p[i] is an ASCII digit, for the sixteen bytes at p.
    static unsigned digit_mask(const char* p) noexcept {
        const auto bytes = reinterpret_cast<x86::v16qu>(x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(p)));
        const x86::v16qu offset = bytes - static_cast<unsigned char>('0');
        return static_cast<unsigned>(x86::mm_movemask_epi8(reinterpret_cast<x86::m128i>(offset <= 9)));
    }
    // Bit i set when chunk's byte i is '"', '\\', a control byte or not ASCII: the last two
    // are the bytes below 0x20 as signed numbers.
    static unsigned string_end_mask(x86::m128i chunk) noexcept {
        const auto bytes = reinterpret_cast<x86::v16qs>(chunk);
        const auto flagged = (bytes == static_cast<signed char>('"')) | (bytes == static_cast<signed char>('\\')) |
                             (bytes < static_cast<signed char>(0x20));
        return static_cast<unsigned>(x86::mm_movemask_epi8(reinterpret_cast<x86::m128i>(flagged)));
    }
    static unsigned string_end_mask(const char* p) noexcept { return string_end_mask(load16(p)); }
#endif

    SAFETENSORS_DETAIL_HOT bool number_slowly(std::uint64_t& out) noexcept {
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
    SAFETENSORS_DETAIL_ALWAYS_INLINE static unsigned leading_digits(std::uint64_t word) noexcept {
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
    SAFETENSORS_DETAIL_ALWAYS_INLINE static std::uint64_t digits_value(std::uint64_t word, unsigned digits) noexcept {
        std::uint64_t v = (word & 0x0F0F0F0F0F0F0F0Fu) << (8 * (8 - digits));
        v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFu;
        v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFu;
        return (v * 10000 + (v >> 32)) & 0xFFFFFFFFu;
    }

    const char* p_;
    const char* end_;
    header_table& t_;
    checks& checks_;
    // The last compact entry's end offset: its digits in the text (0: none to compare) and value.
    const char* last_end_text_ = nullptr;
    std::size_t last_end_digits_ = 0;
    std::uint64_t last_end_ = 0;
    // The last tensor's name, in the text (none yet: null), for the order check.
    const char* previous_name_ = nullptr;
    std::size_t previous_name_size_ = 0;
};

} // namespace safetensors::detail
