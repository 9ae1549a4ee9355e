// safetensors-hpp: the sharded index's SAX handler and the shard-name check.
// sharded.hpp holds the public entry points (read_index, parse_index).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../header_table.hpp"  // max_json_depth: the index gets the header's nesting limit
#include "../index_table.hpp"
#include "merge_sort.hpp"
#include "sax_builder.hpp"

namespace safetensors::detail {

// Why a shard name from an index is not a single plain file name, or nullptr when it is one.
// Names are joined to the index's folder, so anything that could leave that folder (an
// absolute path, "..", a separator of either platform, a Windows drive or stream ":") or that
// the OS would cut short (NUL) is refused.
inline const char* unsafe_shard_name_reason(std::string_view name) noexcept {
    if (name.empty()) return "it is empty";
    if (name.front() == '/' || name.front() == '\\') return "it is an absolute path";
    if (name == ".") return "it is \".\"";
    if (name == "..") return "it is \"..\"";
    if (name.find('/') != std::string_view::npos) return "it contains \"/\"";
    if (name.find('\\') != std::string_view::npos) return "it contains a backslash";
    if (name.find('\0') != std::string_view::npos) return "it contains a NUL byte";
    if (name.find(':') != std::string_view::npos) return "it contains \":\" (a drive or stream separator on Windows)";
    return nullptr;
}

// Builds an index_table from nlohmann's SAX events in one pass: the weight_map goes straight
// into compact vectors (no DOM for what can be millions of entries); only "metadata" (small in
// practice) is built as a DOM, since callers want it as JSON. Every callback returns false to
// stop at the first problem (sax_builder keeps it and throws it once nlohmann returns).
class index_builder : public sax_builder {
public:
    using json = nlohmann::json;

    static index_table build(std::string_view text, const std::string& where) {
        if (text.size() > max_index_size)
            throw_error(errc::invalid_index, where + " is too large: " + std::to_string(text.size()) +
                                                 " bytes, the limit is " + std::to_string(max_index_size));
        index_table table;
        index_builder builder(table, where);
        table.raw_.assign(text.data(), text.size());
        parse(text, builder);
        builder.finish();
        return table;
    }

    // --- nlohmann SAX interface -------------------------------------------------------
    bool null() { return value(json(nullptr), "null"); }
    bool boolean(bool v) { return value(json(v), v ? "true" : "false"); }
    bool number_integer(json::number_integer_t v) { return value(json(v), std::to_string(v)); }
    bool number_unsigned(json::number_unsigned_t v) { return value(json(v), std::to_string(v)); }
    bool number_float(json::number_float_t v, const std::string& text) { return value(json(v), text); }
    bool binary(json::binary_t&) { return fail(errc::invalid_index, where_ + ": unexpected binary value"); }

    bool string(std::string& v) {
        if (state_ == state::map_entry) return add_entry(std::move(v));
        return value(json(v), quote(v, 60));  // json(v), as nlohmann's DOM parser builds it (compile cost)
    }

    bool start_object(std::size_t) {
        if (!enter()) return false;
        switch (state_) {
            case state::top_value: state_ = state::top_object; return true;
            case state::map_value: state_ = state::map_object; return true;
            case state::metadata_value:
                // json(value_t) rather than json::object(): the same empty value, without
                // compiling nlohmann's initializer-list constructor (compile cost).
                table_.metadata_ = json(json::value_t::object);
                stack_.push_back(&table_.metadata_);
                state_ = state::metadata_tree;
                return true;
            case state::metadata_tree: return open_container(json(json::value_t::object));
            case state::skipping: skip_start(); return true;
            default: return unexpected("an object");
        }
    }

    bool key(std::string& k) {
        switch (state_) {
            case state::top_object:
                if (k == "weight_map" || k == "metadata") {
                    bool& seen = k == "weight_map" ? map_seen_ : metadata_seen_;
                    if (seen) return fail(errc::invalid_index, where_ + ": key \"" + k + "\" is given twice");
                    seen = true;
                    state_ = k == "weight_map" ? state::map_value : state::metadata_value;
                    return true;
                }
                // Unknown top-level keys are ignored (their nesting still counts).
                start_skip();
                state_ = state::skipping;
                return true;
            case state::map_object:
                current_ = std::move(k);
                state_ = state::map_entry;
                return true;
            case state::metadata_tree:
                if (object_of(*stack_.back()).count(k) != 0)
                    return fail(errc::invalid_index, where_ + ": key " + quote(k) + " is given twice in \"metadata\"");
                pending_key_ = std::move(k);
                return true;
            default: return true;  // keys inside a skipped value
        }
    }

    bool end_object() {
        leave();
        switch (state_) {
            case state::top_object: state_ = state::done; return true;
            case state::map_object: state_ = state::top_object; return true;
            case state::metadata_tree: return close_container();
            case state::skipping: return leave_skipped();
            default: return true;
        }
    }

    bool start_array(std::size_t) {
        if (!enter()) return false;
        switch (state_) {
            case state::metadata_tree: return open_container(json(json::value_t::array));
            case state::skipping: skip_start(); return true;
            default: return unexpected("an array");
        }
    }

    bool end_array() {
        leave();
        switch (state_) {
            case state::metadata_tree: return close_container();
            case state::skipping: return leave_skipped();
            default: return true;
        }
    }

private:
    enum class state {
        top_value, top_object, done,
        map_value, map_object, map_entry,
        metadata_value, metadata_tree,
        skipping,
    };

    index_builder(index_table& table, const std::string& where)
        : sax_builder({where, where, errc::invalid_index, errc::invalid_index, errc::invalid_index}),
          table_(table), where_(where) {}

    // A scalar: kept inside "metadata", skipped inside unknown keys, an error elsewhere.
    bool value(json v, const std::string& shown) {
        switch (state_) {
            case state::metadata_value:
                if (v.is_null()) {  // "metadata": null is the same as no metadata
                    state_ = state::top_object;
                    return true;
                }
                return unexpected(shown);
            case state::metadata_tree: return insert(std::move(v)) != nullptr;
            case state::skipping:
                if (skip_scalar()) state_ = state::top_object;  // a skipped scalar
                return true;
            default: return unexpected(shown);
        }
    }

    bool unexpected(const std::string& shown) {
        switch (state_) {
            case state::top_value: return fail(errc::invalid_index, where_ + " must be a JSON object, got " + shown);
            case state::map_value:
                return fail(errc::invalid_index, where_ + ": \"weight_map\" must be an object, got " + shown);
            case state::map_entry:
                return fail(errc::invalid_index, where_ + ": weight_map entry for tensor " + quote(current_) +
                                                     " must be a string (a shard file name), got " + shown);
            case state::metadata_value:
                return fail(errc::invalid_index, where_ + ": \"metadata\" must be an object or null, got " + shown);
            default: return fail(errc::invalid_index, where_ + ": unexpected value " + shown);
        }
    }

    // The metadata tree is built with the container calls nlohmann's own DOM parser makes, which
    // every file including nlohmann/json.hpp compiles anyway: json's push_back, operator[],
    // contains, find and get<T> each compiled nlohmann's checks and messages once more (about
    // 5 MB of compiler memory; compile cost).
    static json::object_t& object_of(json& j) noexcept { return *j.get_ptr<json::object_t*>(); }
    static const json::object_t& object_of(const json& j) noexcept { return *j.get_ptr<const json::object_t*>(); }
    json* insert(json v) {
        json& parent = *stack_.back();
        if (parent.is_array()) {
            json::array_t& items = *parent.get_ptr<json::array_t*>();
            items.emplace_back(std::move(v));
            return &items.back();
        }
        json& slot = object_of(parent)[pending_key_];
        slot = std::move(v);
        return &slot;
    }
    // Pointers into the tree stay valid: only the innermost open container ever grows.
    bool open_container(json empty) {
        stack_.push_back(insert(std::move(empty)));
        return true;
    }
    bool close_container() {
#if JSON_DIAGNOSTICS
        // The container calls above leave nlohmann's parent links (a debugging option) unset;
        // moving a value sets its children's, as the DOM parser's set_parents() does.
        *stack_.back() = json(std::move(*stack_.back()));
#endif
        stack_.pop_back();
        if (stack_.empty()) state_ = state::top_object;
        return true;
    }
    bool leave_skipped() {
        if (skip_end()) state_ = state::top_object;
        return true;
    }

    bool add_entry(std::string shard) {
        state_ = state::map_object;
        if (const char* reason = unsafe_shard_name_reason(shard))
            return fail(errc::unsafe_shard_name, where_ + ": tensor " + quote(current_) + " names shard " + quote(shard) +
                                                     ", which is not a plain file name: " + reason);
        if (table_.names_.size() >= UINT32_MAX) return fail(errc::invalid_index, where_ + ": too many tensors");
        json& id = shard_ids_[shard];  // null when the shard is new
        if (id.is_null()) {
            json::number_unsigned_t next = table_.shards_.size();
            id = json(next);
            table_.shards_.push_back(std::move(shard));
        }
        table_.names_.push_back(std::move(current_));
        table_.shard_of_.push_back(narrow<std::uint32_t>(*id.get_ptr<const json::number_unsigned_t*>()));
        return true;
    }

    // After the parse: "weight_map" present, names unique, total_size well-formed.
    void finish() {
        if (!map_seen_) throw_error(errc::invalid_index, where_ + " has no \"weight_map\"");
        auto& t = table_;
        const std::size_t n = t.names_.size();
        t.by_name_.resize(n);
        std::iota(t.by_name_.begin(), t.by_name_.end(), 0u);
        const auto by_name = [&t](std::uint32_t a, std::uint32_t b) { return t.names_[a] < t.names_[b]; };
        merge_sort(t.by_name_.data(), t.by_name_.data() + n, by_name);
        for (std::size_t i = 1; i < n; ++i)
            if (t.names_[t.by_name_[i - 1]] == t.names_[t.by_name_[i]])
                throw_error(errc::invalid_index,
                            where_ + ": tensor " + quote(t.names_[t.by_name_[i]]) + " is listed twice in weight_map");
        // Shards in name order (numeric order for transformers' zero-padded names), not in the
        // order the sorted weight_map happens to first mention them.
        std::vector<std::uint32_t> order(t.shards_.size());
        std::iota(order.begin(), order.end(), 0u);
        merge_sort(order.data(), order.data() + order.size(),
                   [&t](std::uint32_t a, std::uint32_t b) { return t.shards_[a] < t.shards_[b]; });
        std::vector<std::uint32_t> rank(order.size());
        std::vector<std::string> sorted(order.size());
        for (std::size_t r = 0; r < order.size(); ++r) {
            rank[order[r]] = narrow<std::uint32_t>(r);
            sorted[r] = std::move(t.shards_[order[r]]);
        }
        t.shards_ = std::move(sorted);
        for (auto& s : t.shard_of_) s = rank[s];

        if (t.metadata_.is_null()) return;
        const json::object_t& metadata = object_of(t.metadata_);
        metadata_map strings;
        for (const auto& [key, value] : metadata)
            strings.append_unchecked(key, value.is_string() ? *value.get_ptr<const std::string*>() : value.dump());
        strings.build_index();  // keys are unique: checked while parsing
        t.metadata_strings_ = std::move(strings);
        const auto total = metadata.find(std::string("total_size"));
        if (total == metadata.end()) return;
        if (!total->second.is_number_unsigned())
            throw_error(errc::invalid_index, where_ + ": metadata \"total_size\" must be an unsigned integer, got " +
                                                 shown(total->second));
        t.total_size_ = *total->second.get_ptr<const json::number_unsigned_t*>();
    }

    // A JSON value for a message: strings quoted and escaped, others compact, both cut short.
    static std::string shown(const json& v) {
        if (v.is_string()) return quote(*v.get_ptr<const std::string*>(), 60);
        std::string text = v.dump(-1, ' ', /*ensure_ascii=*/true);
        if (text.size() > 60) text = text.substr(0, 60) + "...";
        return text;
    }

    index_table& table_;
    const std::string& where_;
    state state_ = state::top_value;
    bool map_seen_ = false;
    bool metadata_seen_ = false;
    std::string current_;                         // the tensor whose shard comes next
    // Shard name -> its number, in the map type nlohmann compiles anyway (a std::map of our own
    // cost about 4 MB of compiler memory; compile cost).
    json::object_t shard_ids_;
    std::vector<json*> stack_;                    // open containers inside "metadata"
    std::string pending_key_;
};

} // namespace safetensors::detail
