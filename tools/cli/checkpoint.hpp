// safetensors command: an input path as one collection of tensors, whether it names a
// .safetensors file, a model.safetensors.index.json or a folder holding either, or is the URL of
// a file or an index (remote.hpp); and the --filter / --exclude regular expressions that select
// tensors by name.
#pragma once

#include <safetensors/safetensors.hpp>

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "output.hpp"
#include "remote.hpp"

namespace cli {

// A folder or a name ending in ".json" is a sharded checkpoint (or a folder holding one
// model.safetensors, which open_sharded also takes).
inline bool is_sharded_path(const std::string& path) {
    return st::detail::is_directory(path) || (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0);
}

// One input: a single file, or every shard of a sharded checkpoint.
class checkpoint {
public:
    struct entry {
        st::tensor_view view;
        std::size_t shard;  // 0 for a single file
    };

    // validate: for a sharded input, open every shard and check them against the index
    // first (shards and weight_map agree, total_size right).
    explicit checkpoint(std::string path, bool validate = true)
        : path_(std::move(path)), remote_(is_url(path_)), shown_(remote_ ? shown_url(path_) : path_) {
        if (remote_) {
            if (is_index_url(path_)) {
                sharded_ = open_url_index(path_);
                if (validate) sharded_->validate();
            } else {
                single_ = open_url_file(path_);
            }
        } else if (is_sharded_path(path_)) {
            sharded_ = st::open_sharded(path_);
            if (validate) sharded_->validate();
        } else {
            single_ = st::open(path_);
        }
    }

    const std::string& path() const noexcept { return path_; }
    // How output names the input: the path as given, or the URL without its query.
    const std::string& shown() const noexcept { return shown_; }
    bool is_remote() const noexcept { return remote_; }
    bool is_sharded() const noexcept { return sharded_.has_value(); }
    bool is_index() const noexcept { return sharded_ && sharded_->is_index(); }
    // How output names the index: its path (a folder's index file), or its URL.
    const std::string& index_shown() const noexcept { return sharded_->index_path(); }
    // How output names a shard: its path, or for an index URL the index's URL up to its last
    // '/' and the shard's name (where the library reads it, the query aside).
    std::string shard_shown(std::size_t shard) const {
        if (!remote_) return sharded_->shard_path(shard);
        return shown_.substr(0, shown_.rfind('/', shown_.find_first_of("?#")) + 1) + sharded_->shard_names().at(shard);
    }
    const st::file& single() const { return *single_; }
    const st::sharded_file& sharded() const { return *sharded_; }

    // How many tensors, over all shards.
    std::size_t size() const {
        if (single_) return single_->size();
        std::size_t count = 0;
        for (std::size_t s = 0; s < sharded_->shard_count(); ++s) count += sharded_->shard(s).size();
        return count;
    }

    // Every tensor, shard by shard, each in file order.
    std::vector<entry> entries() const {
        std::vector<entry> out;
        out.reserve(size());
        if (single_) {
            for (const st::tensor_view& view : *single_) out.push_back({view, 0});
            return out;
        }
        for (std::size_t s = 0; s < sharded_->shard_count(); ++s)
            for (const st::tensor_view& view : sharded_->shard(s)) out.push_back({view, s});
        return out;
    }

    st::tensor_view tensor(const std::string& name) const {
        return single_ ? single_->tensor(name) : sharded_->tensor(name);
    }

    // The header's metadata (a single file, or a folder of one file); an index's metadata is
    // JSON (index_metadata()).
    const st::metadata_map* metadata() const noexcept {
        return single_ ? single_->metadata() : sharded_->metadata();
    }
    const nlohmann::json* index_metadata() const noexcept { return is_index() ? sharded_->metadata_json() : nullptr; }

    const std::vector<std::string>& shard_names() const { return sharded_->shard_names(); }

private:
    std::string path_;
    bool remote_;
    std::string shown_;
    std::optional<st::file> single_;
    std::optional<st::sharded_file> sharded_;
};

// A --filter/--exclude/--rename pattern, compiled once; a pattern std::regex refuses is a
// usage error that names the flag.
inline std::regex compile_regex(const std::string& pattern, const std::string& flag) {
    try {
        return std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw usage_error("invalid " + flag + " regular expression " + st::detail::quote(pattern) + ": " + e.what());
    }
}

// Tensor selection by name: kept when it contains a match of --filter (if given) and none of
// --exclude (if given).
class name_filter {
public:
    name_filter() = default;
    name_filter(const std::optional<std::string>& filter, const std::optional<std::string>& exclude) {
        if (filter) filter_ = compile_regex(*filter, "--filter");
        if (exclude) exclude_ = compile_regex(*exclude, "--exclude");
    }
    bool active() const noexcept { return filter_.has_value() || exclude_.has_value(); }
    bool keeps(std::string_view name) const {
        if (!active()) return true;
        const std::string text(name);
        if (filter_ && !std::regex_search(text, *filter_)) return false;
        return !(exclude_ && std::regex_search(text, *exclude_));
    }

private:
    std::optional<std::regex> filter_;
    std::optional<std::regex> exclude_;
};

} // namespace cli
