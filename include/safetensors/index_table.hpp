// safetensors-hpp: index_table, a parsed and checked model.safetensors.index.json: the
// weight_map, the shard names and the metadata. detail/index_parser.hpp builds one; sharded.hpp
// reads one from a file and opens its shards.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "metadata.hpp"
#include "span.hpp"

namespace safetensors {

// The index JSON gets the header's limit: transformers' indexes are kilobytes to a few MB.
inline constexpr std::uint64_t max_index_size = 100'000'000;
// The names transformers uses inside a model folder.
inline constexpr std::string_view index_file_name = "model.safetensors.index.json";
inline constexpr std::string_view single_file_name = "model.safetensors";

class sharded_file;
namespace detail {
class index_builder;
}

// A parsed, checked index: the weight_map in document order, the distinct shard names
// sorted, the metadata, and the raw JSON text. Touches no file.
class index_table {
public:
    // Tensors in weight_map order.
    std::size_t size() const noexcept { return names_.size(); }
    bool empty() const noexcept { return names_.empty(); }
    std::string_view name(std::size_t index) const noexcept { return names_[index]; }
    // Position of the tensor's shard in shards().
    std::size_t shard_of(std::size_t index) const noexcept { return shard_of_[index]; }
    // Position (weight_map order) of the tensor called name, O(log n).
    std::optional<std::size_t> find(std::string_view name) const noexcept {
        auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [this](std::uint32_t i, std::string_view n) { return std::string_view(names_[i]) < n; });
        if (it == by_name_.end() || names_[*it] != name) return std::nullopt;
        return *it;
    }
    // weight_map positions sorted by name (bytewise).
    span<const std::uint32_t> sorted_indices() const noexcept { return by_name_; }

    // Distinct shard file names, sorted bytewise.
    const std::vector<std::string>& shards() const noexcept { return shards_; }

    // The "metadata" object as JSON; null when the index has none (or "metadata": null).
    const nlohmann::json* metadata_json() const noexcept { return metadata_.is_null() ? nullptr : &metadata_; }
    // The same as strings, in key order: strings as they are, other values as compact JSON
    // ("total_size" -> "148480"). Null when the index has no metadata.
    const metadata_map* metadata() const noexcept { return metadata_strings_ ? &*metadata_strings_ : nullptr; }
    // metadata "total_size": the bytes of all tensors over all shards, when given.
    std::optional<std::uint64_t> total_size() const noexcept { return total_size_; }
    // The index file's text, as read.
    const std::string& raw_json() const noexcept { return raw_; }

private:
    friend class detail::index_builder;
    friend class sharded_file;

    std::vector<std::string> names_;
    std::vector<std::uint32_t> shard_of_;
    std::vector<std::uint32_t> by_name_;
    std::vector<std::string> shards_;
    nlohmann::json metadata_;  // null when absent (an index's "metadata" is an object or nothing)
    std::optional<metadata_map> metadata_strings_;
    std::optional<std::uint64_t> total_size_;
    std::string raw_;
};

} // namespace safetensors
