// safetensors-hpp: writing a sharded checkpoint the way transformers' save_pretrained does:
// shard files model-00001-of-0000N.safetensors and model.safetensors.index.json.
//
//   plan_shards(tensors, max_shard_size)     which tensors go in which shard
//   index_json(weight_map, metadata)         the index text transformers writes
//   save_sharded(folder, tensors, options)   shards, then the index
//
// The split is huggingface_hub's split_state_dict_into_shards (what transformers calls): walk
// the tensors in the order given; a tensor larger than max_shard_size gets a shard of its own
// right away (the shard being filled stays open and comes after it); otherwise, if adding it
// would take the current shard past max_shard_size, the current shard is closed and a new one
// started. One shard means no index: the file is <prefix>.safetensors, as transformers writes.
//
// Each file is written atomically (writer.hpp), shards first and the index last, so a reader
// that goes through the index never sees a partly written shard of this save. The set as a whole
// is not atomic: a failure part way leaves the shards written so far (and an older index, if the
// folder had one, may then name shards that changed). Shards of an earlier save with other names
// (another shard count) are not removed. The folder and its missing parents are created, as
// save_pretrained does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/atomic_file.hpp"
#include "detail/checked.hpp"
#include "detail/index_parser.hpp"
#include "detail/index_paths.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "sharded.hpp"
#include "metadata.hpp"
#include "span.hpp"
#include "tensor_ref.hpp"
#include "write_options.hpp"
#include "writer.hpp"

namespace safetensors {

struct sharded_write_options {
    // Bytes of tensor data per shard at most (a larger tensor gets a shard of its own).
    // 5,000,000,000 is huggingface_hub's default ("5GB"); transformers' "40KB" is 40,000.
    std::uint64_t max_shard_size = 5'000'000'000;
    // File names: <prefix>-00001-of-00005.safetensors, <prefix>.safetensors.index.json, and
    // <prefix>.safetensors for a single shard. Must be a plain file name.
    std::string prefix = "model";
    // The __metadata__ of every shard: transformers writes {"format": "pt"}; nullopt for none.
    std::optional<metadata_map> shard_metadata = metadata_map{{"format", "pt"}};
    // Extra keys for the index's "metadata" object, besides the computed ones. Must be an
    // object without "total_size" (and "total_parameters" when that is computed).
    nlohmann::json index_metadata = nlohmann::json(nlohmann::json::value_t::object);
    // Also write "total_parameters" (elements over all tensors), as transformers 5 does;
    // transformers 4 writes "total_size" alone.
    bool total_parameters = true;
    // Alignment, fsync and page-cache behaviour of every file.
    write_options write;
};

struct sharded_write_result {
    std::vector<std::string> shard_files;  // paths, in shard order
    std::string index_file;                // "" when everything went into one file
    std::uint64_t total_size = 0;          // bytes of tensor data
    std::uint64_t total_parameters = 0;    // elements
};

namespace detail {

// Bytes the tensor's dtype and shape need (what is written), or an error naming it.
inline std::uint64_t planned_size(const tensor_ref& t) {
    std::uint64_t bytes = 0;
    if (static_cast<std::size_t>(t.dtype()) >= dtype_count || checked_byte_size(t.dtype(), t.shape(), bytes) != size_status::ok)
        throw_error(errc::invalid_tensor, "tensor " + quote(t.name()) + ": its dtype and shape " +
                                              shape_to_string(t.shape()) + " do not give a valid size");
    return bytes;
}

// "00005": at least five digits, as Python's {:05d}.
inline std::string five_digits(std::size_t n) {
    std::string digits = std::to_string(n);
    return digits.size() >= 5 ? digits : std::string(5 - digits.size(), '0') + digits;
}

inline void write_text_file(const std::string& path, const std::string& text, const write_options& options) {
    atomic_file out(path, options.sync, !options.keep_in_cache);
    out.write_at(0, text.data(), text.size());
    out.commit(options.sync);
}

} // namespace detail

// Shards as lists of positions in tensors, by the rule at the top of this header.
inline std::vector<std::vector<std::size_t>> plan_shards(const tensor_list& tensors, std::uint64_t max_shard_size) {
    const span<const tensor_ref> refs = tensors.refs();
    std::vector<std::vector<std::size_t>> shards;
    std::vector<std::size_t> current;
    std::uint64_t current_size = 0;
    for (std::size_t i = 0; i < refs.size(); ++i) {
        const std::uint64_t size = detail::planned_size(refs[i]);
        if (size > max_shard_size) {
            shards.push_back({i});
            continue;
        }
        // current_size <= max_shard_size and size <= max_shard_size: the sum cannot overflow.
        if (current_size + size > max_shard_size) {
            shards.push_back(std::move(current));
            current.clear();
            current_size = 0;
        }
        current.push_back(i);
        current_size += size;
    }
    if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
    return shards;
}

// The index as transformers writes it: json.dumps({"metadata": ..., "weight_map": ...},
// indent=2, sort_keys=True) + "\n": keys sorted, non-ASCII escaped as \uXXXX, a final newline.
// weight_map pairs tensor names with shard file names. Throws invalid_argument for text that is
// not UTF-8 and for a metadata that is not an object.
inline std::string index_json(const std::vector<std::pair<std::string, std::string>>& weight_map,
                              const nlohmann::json& metadata) {
    if (!metadata.is_object())
        detail::throw_error(errc::invalid_argument, "index metadata must be a JSON object, got " + std::string(metadata.type_name()));
    // json(value_t::object) is json::object() without nlohmann's initializer-list constructor (compile cost).
    nlohmann::json map = nlohmann::json(nlohmann::json::value_t::object);
    for (const auto& [name, shard] : weight_map) {
        if (!map.emplace(name, shard).second)
            detail::throw_error(errc::duplicate_name, "duplicate tensor name " + detail::quote(name));
    }
    nlohmann::json index = nlohmann::json(nlohmann::json::value_t::object);
    index["metadata"] = metadata;
    index["weight_map"] = std::move(map);
    try {
        return index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
    } catch (const nlohmann::json::exception& e) {
        detail::throw_error(errc::invalid_argument, std::string("index metadata or names are not valid UTF-8: ") + e.what());
    }
}

namespace detail {
// The options' own checks, made before any tensor is looked at.
inline void check_sharded_options(const sharded_write_options& options) {
    if (const char* reason = detail::unsafe_shard_name_reason(options.prefix))
        detail::throw_error(errc::invalid_argument, "sharded_write_options::prefix " + detail::quote(options.prefix) +
                                                        " is not a plain file name: " + reason);
    if (options.max_shard_size == 0)
        detail::throw_error(errc::invalid_argument, "sharded_write_options::max_shard_size must be positive");
    if (!options.index_metadata.is_object())
        detail::throw_error(errc::invalid_argument, "sharded_write_options::index_metadata must be a JSON object, got " +
                                                        std::string(options.index_metadata.type_name()));
    for (const char* key : {"total_size", "total_parameters"}) {
        if (key == std::string_view("total_parameters") && !options.total_parameters) continue;
        if (options.index_metadata.contains(key))
            detail::throw_error(errc::invalid_argument, std::string("sharded_write_options::index_metadata must not set \"") + key +
                                                            "\": it is computed from the tensors");
    }
}

inline sharded_write_result save_sharded_into(const std::string& folder, const tensor_list& tensors,
                                              const sharded_write_options& options) {
    check_sharded_options(options);
    const span<const tensor_ref> refs = tensors.refs();
    const auto plan = plan_shards(tensors, options.max_shard_size);
    const std::size_t count = plan.size();
    const std::string base = detail::as_folder(folder);

    sharded_write_result result;
    std::vector<std::string> names(count);
    std::vector<std::vector<tensor_ref>> shard_refs(count);
    std::vector<std::pair<std::string, std::string>> weight_map;
    weight_map.reserve(refs.size());
    for (std::size_t s = 0; s < count; ++s) {
        names[s] = count == 1 ? options.prefix + ".safetensors"
                              : options.prefix + "-" + detail::five_digits(s + 1) + "-of-" + detail::five_digits(count) +
                                    ".safetensors";
        for (std::size_t i : plan[s]) {
            const tensor_ref& t = refs[i];
            shard_refs[s].push_back(t);
            weight_map.emplace_back(std::string(t.name()), names[s]);
            std::uint64_t elements = 0;
            checked_element_count(t.shape(), elements);  // planned_size checked it
            if (!detail::checked_add(result.total_size, detail::planned_size(t), result.total_size) ||
                !detail::checked_add(result.total_parameters, elements, result.total_parameters))
                detail::throw_error(errc::file_too_large, "the tensors hold more than 2^64 bytes");
        }
        // Validates the shard as save() will (sizes, names, metadata, header limit).
        detail::plan_for(shard_refs[s], options.shard_metadata ? &*options.shard_metadata : nullptr, options.write);
    }

    std::string index_text;
    if (count > 1) {
        nlohmann::json metadata = options.index_metadata;
        metadata["total_size"] = result.total_size;
        if (options.total_parameters) metadata["total_parameters"] = result.total_parameters;
        index_text = index_json(weight_map, metadata);  // duplicate names across shards throw here
    }

    if (!folder.empty()) detail::make_folders(folder);
    for (std::size_t s = 0; s < count; ++s) {
        result.shard_files.push_back(base + names[s]);
        save(result.shard_files.back(), shard_refs[s], options.shard_metadata, options.write);
    }
    if (count > 1) {
        result.index_file = base + options.prefix + ".safetensors.index.json";
        detail::write_text_file(result.index_file, index_text, options.write);
    }
    return result;
}
} // namespace detail

// Writes the tensors (in the order given, which decides the split) into folder as a sharded
// checkpoint; see the top of this header. Everything is validated before the first file is
// written: each shard as save() would, names unique across shards, the options.
inline sharded_write_result save_sharded(const std::string& folder, const tensor_list& tensors,
                                         const sharded_write_options& options = {}) {
    return detail::about_path(folder, [&] { return detail::save_sharded_into(folder, tensors, options); });
}

} // namespace safetensors
