// safetensors-hpp: sharded checkpoints: model.safetensors.index.json and its shard files,
// opened as one collection of tensors.
//
//   auto model = safetensors::open_sharded("path/to/folder");   // or the index file itself
//   safetensors::tensor_view w = model.tensor("lm_head.weight"); // opens its shard on first use
//
// What open checks, eagerly (no shard is touched): the index is at most max_index_size bytes
// of UTF-8 JSON nested at most max_json_depth levels, an object with a "weight_map" object of
// tensor name -> shard file name (names unique) and an optional "metadata" object (or null)
// whose "total_size", when present, is an unsigned integer; every shard name is one plain file
// name (errc::unsafe_shard_name). Each errors with errc::invalid_index otherwise.
// What a lookup checks: the shard opens (errc::missing_shard when it does not exist; its own
// header errors otherwise, naming the shard) and holds the tensor (errc::index_mismatch).
// What validate() checks on top, opening every shard: every listed tensor is in its shard, no
// shard holds a tensor the map does not list or lists for another shard (a tensor in two
// shards), and "total_size" equals the bytes of all tensors (errc::index_mismatch).
//
// Shards are opened lazily, at most once each, and thread-safely: any number of threads may
// look up tensors of any shards at once. Views are tensor_views of the shard's file, so
// slicing, shard(), copies and CUDA uploads work on them exactly as on a single file's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/checked.hpp"
#include "detail/closest_name.hpp"
#include "detail/index_paths.hpp"
#include "detail/os.hpp"
#include "detail/table_names.hpp"
#include "detail/tensor_iterator.hpp"
#include "error.hpp"
#include "file.hpp"
#include "index_table.hpp"
#include "header.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"
#include "view.hpp"

#include "detail/index_parser.hpp"

namespace safetensors {

namespace detail {

// A plain mutex: std::mutex does not exist with MinGW's win32 thread model.
using shard_mutex = os::mutex;

// std::lock_guard needs gthreads with MinGW too; this is all it has to do.
class shard_lock {
public:
    explicit shard_lock(shard_mutex& mutex) : mutex_(mutex) { mutex_.lock(); }
    ~shard_lock() { mutex_.unlock(); }
    shard_lock(const shard_lock&) = delete;
    shard_lock& operator=(const shard_lock&) = delete;

private:
    shard_mutex& mutex_;
};

// One shard: opened on first use, under its own lock, then read without locking.
struct shard_slot {
    std::string name;
    std::string path;
    shard_mutex mutex;
    std::atomic<bool> ready{false};
    std::optional<file> opened;  // written once, before ready is set (release)
};

struct sharded_state {
    index_table index;
    std::string index_path;  // "" for a single file opened as a collection
    std::string folder;      // the index's folder as given, with its separator (or "")
    std::string where;       // how messages name the index
    open_options options;
    // Set by from_index with an opener: each shard's source, by shard name (else by path).
    std::function<std::shared_ptr<const source>(const std::string&)> opener;
    std::unique_ptr<shard_slot[]> slots;
    const metadata_map* single_metadata = nullptr;  // a single file's __metadata__
    bool single_file = false;                       // one file opened as a collection, no index
};

inline bool ends_with(std::string_view text, std::string_view suffix) noexcept {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

} // namespace detail

// Parses index JSON held in memory (the text of a model.safetensors.index.json). Throws
// safetensors::error (invalid_index, unsafe_shard_name); messages call it "index".
inline index_table parse_index(std::string_view json) { return detail::index_builder::build(json, "index"); }

namespace detail {
// The whole text of an index from its source (a file, a URL), the size limit checked before
// anything is read; where: how messages name it.
inline std::string read_index_text(const source& src, const std::string& where) {
    if (src.size() > max_index_size)
        throw_error(errc::invalid_index, where + " is too large: " + std::to_string(src.size()) +
                                             " bytes, the limit is " + std::to_string(max_index_size));
    std::string text(to_size(src.size()), '\0');
    if (!text.empty()) src.read_at(0, &text[0], text.size());
    return text;
}
} // namespace detail

// Reads and parses the index file at path; messages name it. The size limit is checked before
// anything is read.
inline index_table read_index(const std::string& path) {
    return detail::about_path(path, [&] {
        const std::string where = "index " + detail::quote(path);
        return detail::index_builder::build(detail::read_index_text(*open_source(path), where), where);
    });
}

// A sharded checkpoint as one collection of tensors. Copies share the same state (and the
// shards opened so far); every member is const and safe to call from any number of threads.
class sharded_file {
public:
    // path is one of:
    //   - an index file (a name ending in ".json"): its shards are looked up in the folder of
    //     path as given (a symbolic link is not resolved first);
    //   - a folder: its model.safetensors.index.json, or else its model.safetensors;
    //   - any other file: opened as a single safetensors file, a collection of one shard.
    // options are passed to every shard's open.
    static sharded_file open(const std::string& path, const open_options& options = {}) {
        return detail::about_path(path, [&] { return open_path(path, options); });
    }

    // A parsed index whose shards are in folder (as given: "" is the current folder).
    static sharded_file from_index(index_table index, const std::string& folder, const open_options& options = {}) {
        auto state = make_state(std::move(index), options);
        state->folder = detail::as_folder(folder);
        state->where = "index in " + detail::quote(folder.empty() ? std::string(".") : folder);
        fill_slots(*state);
        return sharded_file(std::move(state));
    }

    // A parsed index whose shards come from opener(shard name), called once per shard when
    // it is first needed: a reader of your own (an object store, HTTP, see source.hpp) for
    // every shard. Fetch the index's text through the same reader and parse_index() it.
    // A safetensors::error with file_not_found from opener is reported as missing_shard.
    // index_name: what index_path() returns and messages call the index (its URL, say);
    // shard_path() is then the shard's name.
    using shard_opener = std::function<std::shared_ptr<const safetensors::source>(const std::string& shard_name)>;
    static sharded_file from_index(index_table index, shard_opener opener, const std::string& index_name = {}) {
        if (!opener) detail::throw_error(errc::invalid_argument, "from_index: empty shard opener");
        auto state = make_state(std::move(index), {});
        state->opener = std::move(opener);
        state->index_path = index_name;
        state->where = index_name.empty() ? std::string("index") : "index " + detail::quote(index_name);
        fill_slots(*state);
        return sharded_file(std::move(state));
    }

    // Whether this came from an index (false for a single file opened as a collection).
    bool is_index() const noexcept { return !state_->single_file; }
    // The index file's path as given ("" for a single file, or an index given in memory
    // without a name), and the folder of the shards.
    const std::string& index_path() const noexcept { return state_->index_path; }
    const std::string& folder() const noexcept { return state_->folder; }

    // Number of tensors in the weight_map.
    std::size_t size() const noexcept { return index().size(); }
    bool empty() const noexcept { return index().empty(); }

    // Names in weight_map order, and sorted bytewise (Python's keys() order).
    std::vector<std::string_view> keys() const { return detail::names_in_table_order(index()); }
    std::vector<std::string_view> sorted_keys() const { return detail::names_sorted(index()); }

    // Whether the weight_map lists name (no shard is opened).
    bool contains(std::string_view name) const noexcept { return index().find(name).has_value(); }

    // The tensor, from its shard (opened now if needed). Throws tensor_not_found when the
    // weight_map does not list it (naming the closest name within 2 edits, if any);
    // missing_shard, the shard's own open errors, or index_mismatch when its shard cannot
    // provide it.
    tensor_view tensor(std::string_view name) const { return tensor_in_shard(position_of(name)); }
    tensor_view operator[](std::string_view name) const { return tensor(name); }
    // nullopt when the weight_map does not list name; throws like tensor() when its shard
    // cannot provide it (that is a broken checkpoint, not an absent tensor).
    std::optional<tensor_view> find(std::string_view name) const {
        const auto at = index().find(name);
        if (!at) return std::nullopt;
        return tensor_in_shard(*at);
    }
    // tensor(), without throwing.
    result<tensor_view> try_tensor(std::string_view name) const noexcept {
        return detail::capture([&] { return tensor(name); });
    }
    // The index-th tensor in weight_map order.
    tensor_view tensor_at(std::size_t index) const {
        if (index >= size())
            detail::throw_error(errc::out_of_range, "tensor index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(size()) + " tensors)");
        return tensor_in_shard(index);
    }

    // Shard file names, sorted bytewise (for transformers' names: model-00001-of-..., ...).
    const std::vector<std::string>& shard_names() const noexcept { return index().shards(); }
    std::size_t shard_count() const noexcept { return index().shards().size(); }
    // The path a shard is opened from: the index's folder as given, then the name.
    const std::string& shard_path(std::size_t shard) const {
        check_shard(shard);
        return state_->slots[shard].path;
    }
    // The shard's file, opened now if it was not yet.
    const file& shard(std::size_t shard) const {
        check_shard(shard);
        detail::shard_slot& slot = state_->slots[shard];
        if (!slot.ready.load(std::memory_order_acquire)) {
            detail::shard_lock lock(slot.mutex);
            if (!slot.ready.load(std::memory_order_relaxed)) {
                slot.opened.emplace(open_shard(slot));
                slot.ready.store(true, std::memory_order_release);
            }
        }
        return *slot.opened;
    }
    // Which shard the weight_map puts name in; throws tensor_not_found.
    std::size_t shard_of(std::string_view name) const { return index().shard_of(position_of(name)); }
    const std::string& shard_name_of(std::string_view name) const { return shard_names()[shard_of(name)]; }
    // The file holding name (its shard, opened now if needed).
    const file& file_for(std::string_view name) const { return shard(shard_of(name)); }

    // The index's "metadata" as strings (see index_table::metadata); for a single file, its
    // __metadata__. Null when there is none.
    const metadata_map* metadata() const noexcept {
        return is_index() ? index().metadata() : state_->single_metadata;
    }
    // The index's "metadata" as JSON; null when there is none (always for a single file).
    const nlohmann::json* metadata_json() const noexcept { return index().metadata_json(); }
    std::optional<std::uint64_t> total_size() const noexcept { return index().total_size(); }
    const index_table& index() const noexcept { return state_->index; }

    // Opens every shard and checks that shards and weight_map agree (see the top of this
    // header). Throws the first problem found.
    void validate() const {
        const index_table& table = index();
        for (std::size_t i = 0; i < table.size(); ++i) tensor_in_shard(i);
        std::uint64_t total = 0;
        for (std::size_t s = 0; s < shard_count(); ++s) {
            const file& f = shard(s);
            for (const tensor_view& view : f) {
                const auto at = table.find(view.name());
                if (!at)
                    detail::throw_error(errc::index_mismatch, "shard " + detail::quote(shard_names()[s]) + " holds tensor " +
                                                                  detail::quote(view.name()) + ", which the weight_map of " +
                                                                  state_->where + " does not list");
                if (table.shard_of(*at) != s)
                    detail::throw_error(errc::index_mismatch,
                                        "tensor " + detail::quote(view.name()) + " is in two shards: " +
                                            detail::quote(shard_names()[table.shard_of(*at)]) + " (where the weight_map of " +
                                            state_->where + " puts it) and " + detail::quote(shard_names()[s]));
                total += view.byte_size();  // cannot overflow: each shard's data fits in its file
            }
        }
        if (table.total_size() && *table.total_size() != total)
            detail::throw_error(errc::index_mismatch, "metadata \"total_size\" of " + state_->where + " is " +
                                                          std::to_string(*table.total_size()) + ", but the shards hold " +
                                                          std::to_string(total) + " bytes of tensors");
    }

    // Iterates over tensor_views in weight_map order, opening shards as it reaches them.
    using iterator = detail::tensor_iterator<sharded_file>;
    iterator begin() const { return iterator(*this, 0); }
    iterator end() const { return iterator(*this, size()); }

private:
    static sharded_file open_path(const std::string& path, const open_options& options) {
        if (detail::is_directory(path)) {
            const std::string folder = detail::as_folder(path);
            if (detail::exists(folder + std::string(index_file_name)))
                return open_index(folder + std::string(index_file_name), options);
            if (detail::exists(folder + std::string(single_file_name)))
                return open_single(folder + std::string(single_file_name), options);
            detail::throw_error(errc::file_not_found, "folder " + detail::quote(path) + " holds neither \"" +
                                                          std::string(index_file_name) + "\" nor \"" +
                                                          std::string(single_file_name) + "\"");
        }
        if (detail::ends_with(path, ".json")) return open_index(path, options);
        return open_single(path, options);
    }

    explicit sharded_file(std::shared_ptr<detail::sharded_state> state) : state_(std::move(state)) {}

    static std::shared_ptr<detail::sharded_state> make_state(index_table index, const open_options& options) {
        std::shared_ptr<detail::sharded_state> state(new detail::sharded_state());  // not make_shared: compile cost
        state->index = std::move(index);
        state->options = options;
        return state;
    }
    static void fill_slots(detail::sharded_state& state) {
        const auto& names = state.index.shards();
        state.slots = std::make_unique<detail::shard_slot[]>(names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
            state.slots[i].name = names[i];
            state.slots[i].path = state.folder + names[i];
        }
    }

    static sharded_file open_index(const std::string& path, const open_options& options) {
        auto state = make_state(read_index(path), options);
        state->index_path = path;
        state->folder = detail::folder_of(path);
        state->where = "index " + detail::quote(path);
        fill_slots(*state);
        return sharded_file(std::move(state));
    }

    // One file as a collection of one shard: its keys in file order are the weight_map.
    static sharded_file open_single(const std::string& path, const open_options& options) {
        file f = file::open(path, options);
        index_table table;
        table.names_.reserve(f.size());
        for (std::size_t i = 0; i < f.size(); ++i) table.names_.emplace_back(f.header().name(i));
        table.shard_of_.assign(f.size(), 0);
        const auto sorted = f.header().sorted_indices();
        table.by_name_.assign(sorted.begin(), sorted.end());
        const std::string folder = detail::folder_of(path);
        table.shards_.push_back(path.substr(folder.size()));
        auto state = make_state(std::move(table), options);
        state->folder = folder;
        state->where = detail::quote(path);
        fill_slots(*state);
        state->slots[0].opened.emplace(f);
        state->slots[0].ready.store(true, std::memory_order_release);
        state->single_metadata = state->slots[0].opened->metadata();
        state->single_file = true;
        return sharded_file(std::move(state));
    }

    file open_shard(const detail::shard_slot& slot) const {
        try {
            if (state_->opener) return file::from_source(state_->opener(slot.name));
            return file::open(slot.path, state_->options);
        } catch (const error& e) {
            if (e.code() == errc::file_not_found)
                detail::throw_error(errc::missing_shard, "missing shard " + detail::quote(slot.name) + " of " + state_->where +
                                                             ": " + e.message(), e.path(), e.system_code());
            detail::throw_error(e.code(), "shard " + detail::quote(slot.name) + " of " + state_->where + ": " + e.message(),
                                e.path(), e.system_code());
        }
    }

    tensor_view tensor_in_shard(std::size_t position) const {
        const std::size_t s = index().shard_of(position);
        const std::string_view name = index().name(position);
        auto view = shard(s).find(name);
        if (!view)
            detail::throw_error(errc::index_mismatch, "tensor " + detail::quote(name) + ": the weight_map of " +
                                                          state_->where + " puts it in shard " +
                                                          detail::quote(shard_names()[s]) + ", which has no such tensor");
        return *view;
    }

    std::size_t position_of(std::string_view name) const {
        const auto at = index().find(name);
        if (!at)
            detail::throw_error(errc::tensor_not_found, "no tensor named " + detail::quote(name) + " in " + state_->where +
                                                            detail::did_you_mean(detail::closest_name_in(index(), name)));
        return *at;
    }
    void check_shard(std::size_t shard) const {
        if (shard >= shard_count())
            detail::throw_error(errc::out_of_range, "shard index " + std::to_string(shard) + " is out of range (" +
                                                        std::to_string(shard_count()) + " shards)");
    }

    std::shared_ptr<detail::sharded_state> state_;
};

// safetensors::open_sharded(path): a folder, an index file, or a single file. Throws.
inline sharded_file open_sharded(const std::string& path, const open_options& options = {}) {
    return sharded_file::open(path, options);
}
inline result<sharded_file> try_open_sharded(const std::string& path, const open_options& options = {}) noexcept {
    return detail::capture([&] { return sharded_file::open(path, options); });
}

} // namespace safetensors

#if SAFETENSORS_DETAIL_RANGES
// A view and a borrowed range, like file (see the end of file.hpp).
template <>
inline constexpr bool std::ranges::enable_view<safetensors::sharded_file> = true;
template <>
inline constexpr bool std::ranges::enable_borrowed_range<safetensors::sharded_file> = true;
static_assert(std::ranges::random_access_range<safetensors::sharded_file> &&
              std::ranges::sized_range<safetensors::sharded_file> && std::ranges::common_range<safetensors::sharded_file> &&
              std::ranges::borrowed_range<safetensors::sharded_file>);
#endif
