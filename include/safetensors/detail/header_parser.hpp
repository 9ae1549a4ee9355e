// safetensors-hpp: the header's SAX handler and the validation passes after it.
// header.hpp holds the public entry points (parse_header, read_header).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../header_table.hpp"
#include "header_scanner.hpp"
#include "inlining.hpp"
#include "merge_sort.hpp"
#include "name_less.hpp"
#include "sax_builder.hpp"
#include "utf8.hpp"

namespace safetensors::detail {

// Builds a header_table from nlohmann's SAX events, one pass, no DOM. Every callback
// returns false to stop the parse at the first problem (sax_builder keeps it and throws it
// once nlohmann returns).
class header_builder : public sax_builder {
public:
    using json = nlohmann::json;

    // reader: json_reader::automatic reads with the fast scanner (header_scanner.hpp) and falls
    // back to nlohmann for anything outside its shape; json_reader::nlohmann reads with
    // nlohmann alone (the differential fuzz target compares the two).
    SAFETENSORS_DETAIL_HOT static header_table build(std::string_view text, std::uint64_t data_size,
                                                     json_reader reader = json_reader::automatic) {
        if (reader == json_reader::automatic) {
            // The scanner makes the byte checks itself (see header_scanner.hpp).
            header_table table = empty_table(text, data_size);
            header_scanner::checks done;
            if (header_scanner::scan(text, table, done)) {
                finish(table, &done);
                return table;
            }
        }
        header_table table = empty_table(text, data_size);
        header_builder builder(table);
        parse(text, builder);
        finish(table);
        return table;
    }

    // --- nlohmann SAX interface -------------------------------------------------------
    bool null() { return value_event("null", event::null_value); }
    bool boolean(bool v) { return value_event(v ? "true" : "false", event::other); }
    bool number_integer(json::number_integer_t v) { return value_event(std::to_string(v), event::other); }
    bool number_unsigned(json::number_unsigned_t v) {
        switch (state_) {
            case state::shape_item:
                table_.dims_.push_back(v);
                ++rank_;
                return true;
            case state::offsets_item:
                if (offsets_seen_ == 2) return fail_field(errc::invalid_tensor_entry, "data_offsets", "must have exactly 2 elements, got more");
                offsets_[offsets_seen_++] = v;
                return true;
            default:
                return value_event(std::to_string(v), event::other);
        }
    }
    bool number_float(json::number_float_t, const std::string& text) { return value_event(text, event::other); }
    bool binary(json::binary_t&) { return value_event("binary", event::other); }

    bool string(std::string& value) {
        switch (state_) {
            case state::metadata_value:
                table_.metadata_->append_unchecked(std::move(metadata_key_), std::move(value));
                state_ = state::metadata_object;
                return true;
            case state::dtype_value: {
                auto parsed = parse_dtype(value);
                if (!parsed) {
                    // Another spelling of a dtype ("float32", "f32") gets its name, anything else the list.
                    const auto meant = dtype_from_alias(value);
                    const std::string hint = meant ? "did you mean \"" + std::string(to_string(*meant)) + "\"?"
                                                   : "expected one of BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, "
                                                     "F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, "
                                                     "F32, C64, F64, I64, U64";
                    return fail_field(errc::unknown_dtype, "dtype", "unknown dtype " + quote(value) + " (" + hint + ")");
                }
                dtype_ = *parsed;
                state_ = state::tensor_object;
                return true;
            }
            default:
                return value_event(quote(value, 60), event::other);
        }
    }

    bool start_object(std::size_t) {
        if (!enter()) return false;
        switch (state_) {
            case state::top_value: state_ = state::top_object; return true;
            case state::metadata_entry:
                table_.metadata_.emplace();
                state_ = state::metadata_object;
                return true;
            case state::tensor_entry:
                fields_seen_ = 0;
                rank_ = 0;
                dims_start_ = table_.dims_.size();
                state_ = state::tensor_object;
                return true;
            case state::skipping: skip_start(); return true;
            default: return value_event("an object", event::start);
        }
    }

    bool key(std::string& k) {
        switch (state_) {
            case state::top_object:
                if (std::string_view(k) == "__metadata__") {
                    if (metadata_seen_) return fail(errc::invalid_metadata, "duplicate key \"__metadata__\" in header");
                    metadata_seen_ = true;
                    state_ = state::metadata_entry;
                    return true;
                }
                return begin_tensor(k);
            case state::metadata_object:
                metadata_key_ = std::move(k);
                state_ = state::metadata_value;
                return true;
            case state::tensor_object: return begin_field(k);
            default: return true;  // keys inside a skipped value
        }
    }

    bool end_object() {
        leave();
        switch (state_) {
            case state::top_object: state_ = state::done; return true;
            case state::metadata_object: state_ = state::top_object; return true;
            case state::tensor_object: return end_tensor();
            case state::skipping: return leave_skipped();
            default: return true;
        }
    }

    bool start_array(std::size_t) {
        if (!enter()) return false;
        switch (state_) {
            case state::shape_value: state_ = state::shape_item; return true;
            case state::offsets_value:
                offsets_seen_ = 0;
                state_ = state::offsets_item;
                return true;
            case state::skipping: skip_start(); return true;
            default: return value_event("an array", event::start);
        }
    }

    bool end_array() {
        leave();
        switch (state_) {
            case state::shape_item: state_ = state::tensor_object; return true;
            case state::offsets_item:
                if (offsets_seen_ != 2)
                    return fail_field(errc::invalid_tensor_entry, "data_offsets",
                                      "must have exactly 2 elements, got " + std::to_string(offsets_seen_));
                state_ = state::tensor_object;
                return true;
            case state::skipping: return leave_skipped();
            default: return true;
        }
    }

private:
    static header_table empty_table(std::string_view text, std::uint64_t data_size) {
        header_table table;
        table.header_size_ = text.size();
        table.data_size_ = data_size;
        // Sized from the header so that the pools do not regrow (copy and re-fault) while
        // parsing. Names cannot be longer than the JSON that spells them, so that pool never
        // regrows; tensor entries take about 100 bytes of JSON (80 leaves room). The scanner
        // keeps each distinct shape once (tensors of one shape share its dimensions), so a
        // checkpoint's shapes take a few hundred bytes: one dimension per 256 bytes of JSON
        // leaves room, and headers whose shapes all differ regrow that pool a few times.
        // Unused capacity is never touched, and a fresh process faults in each page it does
        // touch: the small pools come first, so that their used parts share pages, and the
        // names pool's unused tail comes last.
        // The names pool is also the largest block, more than half of all three: glibc then
        // keeps the memory for the next open instead of returning it to the kernel on close
        // (it trims when the free space reaches twice its largest recent block), which spares
        // a process that reopens files a fresh page fault per 4 KiB of table.
        table.entries_.reserve(text.size() / 80);
        table.dims_.reserve(text.size() / 256);
        table.names_.reserve(text.size());
        return table;
    }

    enum class state {
        top_value, top_object, done,
        metadata_entry, metadata_object, metadata_value,
        tensor_entry, tensor_object, dtype_value, shape_value, shape_item, offsets_value, offsets_item,
        skipping,
    };
    enum class event { null_value, start, other };
    enum field_bit : unsigned { dtype_bit = 1, shape_bit = 2, offsets_bit = 4 };

    explicit header_builder(header_table& table)
        : sax_builder({"header", "header JSON", errc::invalid_json, errc::invalid_utf8, errc::nesting_too_deep}),
          table_(table) {}

    // A value (scalar or the start of a container) where the state machine did not expect one.
    bool value_event(const std::string& shown, event kind) {
        switch (state_) {
            case state::top_value:
                return fail(errc::invalid_header, "header must be a JSON object, got " + shown);
            case state::metadata_entry:
                if (kind == event::null_value) {  // "__metadata__": null means no metadata
                    state_ = state::top_object;
                    return true;
                }
                return fail(errc::invalid_metadata, "__metadata__ must be an object of strings or null, got " + shown);
            case state::metadata_value:
                return fail(errc::invalid_metadata, "metadata value for key " + quote(metadata_key_) +
                                                        " must be a string, got " + shown);
            case state::tensor_entry:
                return fail(errc::invalid_tensor_entry, "tensor " + quote(name_of_current()) +
                                                            ": entry must be an object, got " + shown);
            case state::dtype_value: return fail_field(errc::invalid_tensor_entry, "dtype", "must be a string, got " + shown);
            case state::shape_value: return fail_field(errc::invalid_tensor_entry, "shape", "must be an array, got " + shown);
            case state::shape_item:
                return fail_field(errc::invalid_tensor_entry, "shape",
                                  "dimension " + std::to_string(rank_) + " must be an unsigned integer, got " + shown);
            case state::offsets_value:
                return fail_field(errc::invalid_tensor_entry, "data_offsets", "must be an array, got " + shown);
            case state::offsets_item:
                return fail_field(errc::invalid_tensor_entry, "data_offsets",
                                  "element " + std::to_string(offsets_seen_) + " must be an unsigned integer, got " + shown);
            case state::skipping:
                if (kind == event::start) {
                    skip_start();
                    return true;
                }
                if (skip_scalar()) state_ = state::tensor_object;  // a skipped scalar
                return true;
            default:  // top_object/metadata_object/tensor_object get keys, never values
                return fail(errc::invalid_json, "unexpected value " + shown);
        }
    }

    bool leave_skipped() {
        if (skip_end()) state_ = state::tensor_object;
        return true;
    }

    bool begin_tensor(std::string& name) {
        if (name.size() > UINT32_MAX || table_.names_.size() > UINT32_MAX - name.size())
            return fail(errc::invalid_header, "tensor names too long");
        current_.name_offset = narrow<std::uint32_t>(table_.names_.size());
        current_.name_size = narrow<std::uint32_t>(name.size());
        table_.names_.append(name.data(), name.size());
        state_ = state::tensor_entry;
        return true;
    }

    bool begin_field(const std::string& key) {
        const std::string_view k = key;  // compares sizes first, no strlen per key
        unsigned bit = 0;
        if (k == "dtype") {
            bit = dtype_bit;
            state_ = state::dtype_value;
        } else if (k == "shape") {
            bit = shape_bit;
            state_ = state::shape_value;
        } else if (k == "data_offsets") {
            bit = offsets_bit;
            state_ = state::offsets_value;
        } else {
            // Unknown fields are ignored, as the reference does (their nesting still counts).
            start_skip();
            state_ = state::skipping;
            return true;
        }
        if (fields_seen_ & bit) return fail_field(errc::invalid_tensor_entry, key, "is given twice");
        fields_seen_ |= bit;
        return true;
    }

    bool end_tensor() {
        static const char* const names[] = {"dtype", "shape", "data_offsets"};
        for (unsigned i = 0; i < 3; ++i)
            if (!(fields_seen_ & (1u << i)))
                return fail(errc::invalid_tensor_entry, "tensor " + quote(name_of_current()) + ": missing field \"" +
                                                            names[i] + "\"");
        if (dims_start_ > UINT32_MAX || rank_ > table_entry::max_rank)
            return fail(errc::invalid_header, "too many dimensions in header");
        current_.dims_offset = narrow<std::uint32_t>(dims_start_);
        current_.set_rank_and_dtype(narrow<std::uint32_t>(rank_), dtype_);
        current_.begin = offsets_[0];
        current_.end = offsets_[1];
        table_.entries_.push_back(current_);
        state_ = state::top_object;
        return true;
    }

    std::string_view name_of_current() const {
        return {table_.names_.data() + current_.name_offset, current_.name_size};
    }

    bool fail_field(errc code, const std::string& field, const std::string& what) {
        return fail(code, "tensor " + quote(name_of_current()) + ": field \"" + field + "\" " + what);
    }

    // Duplicate keys and names, then the reference's offset walk in (begin, end) order, then
    // the coverage check; the table ends up in offset order with a name index. done: what
    // the scanner checked while reading; when it found the table in walk order, nothing that
    // walk throws can come, and the file order stays.
    static void finish(header_table& t, const header_scanner::checks* done = nullptr) {
        if (t.entries_.size() > UINT32_MAX) throw_error(errc::invalid_header, "too many tensors in header");
        check_metadata_keys(t);
        if (done && done->walk_in_order) {
            index_names(t, done->names_increasing);
            check_coverage(done->walk_end, t.data_size_);
            return;
        }
        auto by_offsets = [](const table_entry& a, const table_entry& b) {
            return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
        };
        // Writers emit tensors in offset order, so sorting is usually skipped.
        merge_sort(t.entries_.data(), t.entries_.data() + t.entries_.size(), by_offsets);
        index_names(t);
        std::uint64_t pos = 0;
        for (const auto& e : t.entries_) pos = check_entry(t, e, pos);
        check_coverage(pos, t.data_size_);
    }

    static void check_metadata_keys(header_table& t) {
        if (!t.metadata_) return;
        const std::size_t dup = t.metadata_->build_index();
        if (dup != t.metadata_->size())
            throw_error(errc::duplicate_metadata_key,
                        "duplicate metadata key " + quote((t.metadata_->begin() + static_cast<std::ptrdiff_t>(dup))->first));
    }

    static std::string_view name_of(const header_table& t, const table_entry& e) {
        return {t.names_.data() + e.name_offset, e.name_size};
    }

    // The name index (by_name_), refusing duplicate names. increasing: the names are known
    // to be strictly increasing in table order.
    SAFETENSORS_DETAIL_HOT static void index_names(header_table& t, bool increasing = false) {
        const auto& entries = t.entries_;
        const std::size_t n = entries.size();
        std::vector<std::uint32_t>& order = t.by_name_;
        order.reserve(n);  // filled one by one: resize would zero them first (a memset call)
        for (std::uint32_t i = 0; i < n; ++i) order.push_back(i);  // n <= UINT32_MAX (finish)
        auto name = [&](std::uint32_t i) { return name_of(t, entries[i]); };
        // One comparison per neighbour pair: strictly increasing means sorted and unique,
        // which is the usual case (writers emit names in order); otherwise sort, then look
        // for equal neighbours.
        auto first_not_increasing = [&] {
            for (std::size_t i = 1; i < n; ++i)
                if (!name_less(name(order[i - 1]), name(order[i]))) return i;
            return n;
        };
        if (increasing || first_not_increasing() == n) return;
        merge_sort(order.data(), order.data() + n, [&](std::uint32_t a, std::uint32_t b) { return name(a) < name(b); });
        const std::size_t at = first_not_increasing();
        if (at != n) throw_error(errc::duplicate_tensor, "duplicate tensor name " + quote(name(order[at])));
    }

    // One step of the reference's walk: e must begin at pos and hold exactly what its dtype
    // and shape need. Returns where the next tensor must begin.
    static std::uint64_t check_entry(const header_table& t, const table_entry& e, std::uint64_t pos) {
        auto name = [&] { return quote(name_of(t, e)); };  // only built for an error message
        if (e.begin != pos || e.end < e.begin)
            throw_error(errc::invalid_offsets, "invalid offset for tensor " + name() + ": data_offsets [" +
                                                   std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                                   "], expected it to begin at " + std::to_string(pos));
        span<const std::uint64_t> shape(t.dims_.data() + e.dims_offset, e.rank());
        auto type = [&] { return std::string(to_string(e.dtype())); };
        std::uint64_t bytes = 0;
        switch (checked_byte_size(e.dtype(), shape, bytes)) {
            case size_status::ok: break;
            case size_status::overflow:
                throw_error(errc::shape_overflow, "overflow computing buffer size for tensor " + name() + " from shape " +
                                                      shape_to_string(shape) + " and dtype " + type());
            case size_status::not_whole_bytes:
                throw_error(errc::misaligned_sub_byte, "tensor " + name() + ": shape " + shape_to_string(shape) + " of dtype " +
                                                           type() + " is not a whole number of bytes");
        }
        if (e.end - e.begin != bytes)
            throw_error(errc::size_mismatch, "invalid shape, data type, or offset for tensor " + name() + ": shape " +
                                                 shape_to_string(shape) + " of dtype " + type() + " needs " +
                                                 std::to_string(bytes) + " bytes, data_offsets [" + std::to_string(e.begin) +
                                                 ", " + std::to_string(e.end) + "] hold " + std::to_string(e.end - e.begin));
        return e.end;
    }

    SAFETENSORS_DETAIL_HOT static void check_coverage(std::uint64_t pos, std::uint64_t data_size) {
        if (pos > data_size)
            throw_error(errc::incomplete_coverage, "file is truncated: " + std::to_string(pos - data_size) +
                                                       " bytes missing (the tensors need a " + std::to_string(pos) +
                                                       "-byte data section, the file has " + std::to_string(data_size) + ")");
        if (pos != data_size)
            throw_error(errc::incomplete_coverage, "incomplete metadata, file not fully covered: tensors cover " +
                                                       std::to_string(pos) + " bytes of a " + std::to_string(data_size) +
                                                       "-byte data section");
    }

    header_table& table_;
    state state_ = state::top_value;
    bool metadata_seen_ = false;
    std::string metadata_key_;

    table_entry current_{};
    unsigned fields_seen_ = 0;
    safetensors::dtype dtype_ = safetensors::dtype::BOOL;
    std::size_t dims_start_ = 0;
    std::size_t rank_ = 0;
    std::uint64_t offsets_[2] = {0, 0};
    std::size_t offsets_seen_ = 0;
};

} // namespace safetensors::detail
