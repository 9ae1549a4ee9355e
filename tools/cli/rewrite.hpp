// safetensors command: rewrite, a copy of a checkpoint through the streaming writer with
// edits: metadata, which tensors, their names, their dtype, the alignment, and the output's
// sharding. safetensors-rewrite is this command.
//
//   safetensors rewrite IN OUT [--set-metadata K=V]... [--drop-metadata K]... [--only NAME]...
//       [--filter REGEX] [--exclude REGEX] [--rename REGEX=REPLACEMENT]... [--to-dtype F16|BF16|F32]
//       [--max-shard-size SIZE] [--align N] [--no-sync] [--progress | --no-progress]
//
// Without options a canonical IN (one the reference writer made) is reproduced byte for byte.
// Tensor bytes are read in chunks through the checked path and handed to stream_writer, so
// memory stays at a few MiB plus the header whatever the size. Every output file is replaced
// atomically; on any error OUT is left as it was.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "output.hpp"
#include "recode.hpp"

namespace cli {

struct rewrite_options {
    std::string input;
    std::string output;
    std::vector<std::string> set_metadata;
    std::vector<std::string> drop_metadata;
    std::vector<std::string> only;
    std::string filter;
    std::string exclude;
    std::vector<std::string> rename;
    std::string to_dtype;
    std::string max_shard_size;
    std::string align;
    bool no_sync = false;
    bool progress = false;
    bool no_progress = false;
};

namespace rewrite_detail {

struct metadata_edit {
    bool drop = false;
    std::string key;
    std::string value;
};

struct rename_rule {
    std::regex pattern;
    std::string replacement;
};

// One output tensor: where it comes from and what it becomes.
struct planned_tensor {
    st::tensor_view source;
    std::string name;
    st::dtype dtype;
};

// Digits only (strtoull would take a sign, spaces and "0x"), at most 19 of them.
inline std::optional<std::uint64_t> parse_count(const std::string& text) {
    if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoull(text);
}

inline std::uint64_t parse_alignment(const std::string& text) {
    const auto n = parse_count(text);
    if (!n || *n == 0 || *n % 8 != 0)
        throw usage_error("--align needs a positive multiple of 8, got " + st::detail::quote(text));
    return *n;
}

// "5GB", "500MB", "40KB" (powers of 1000, as huggingface_hub reads them), "2GiB", "64MiB",
// "1KiB" (powers of 1024), or a plain number of bytes. Case does not matter.
inline std::uint64_t parse_size(const std::string& text) {
    std::string upper;
    for (char c : text) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    static const std::pair<const char*, std::uint64_t> units[] = {
        {"GIB", std::uint64_t{1} << 30}, {"MIB", std::uint64_t{1} << 20}, {"KIB", std::uint64_t{1} << 10},
        {"GB", 1'000'000'000},          {"MB", 1'000'000},               {"KB", 1'000},
        {"B", 1},
    };
    std::uint64_t scale = 1;
    std::string digits = upper;
    for (const auto& [suffix, factor] : units) {
        const std::string s = suffix;
        if (upper.size() > s.size() && upper.compare(upper.size() - s.size(), s.size(), s) == 0) {
            digits = upper.substr(0, upper.size() - s.size());
            scale = factor;
            break;
        }
    }
    const auto n = parse_count(digits);
    std::uint64_t bytes = 0;
    if (!n || *n == 0 || !st::detail::checked_mul(*n, scale, bytes))
        throw usage_error("--max-shard-size needs a positive size such as 5GB, 500MB or 2GiB, got " +
                          st::detail::quote(text));
    return bytes;
}

inline std::vector<rename_rule> parse_renames(const std::vector<std::string>& rules) {
    std::vector<rename_rule> out;
    for (const std::string& rule : rules) {
        const std::size_t eq = rule.find('=');
        if (eq == std::string::npos)
            throw usage_error("--rename needs REGEX=REPLACEMENT, got " + st::detail::quote(rule));
        out.push_back({compile_regex(rule.substr(0, eq), "--rename"), rule.substr(eq + 1)});
    }
    return out;
}

// --set-metadata and --drop-metadata in the order given on the command line.
inline std::vector<metadata_edit> metadata_edits(const CLI::App& app, const rewrite_options& opts) {
    std::vector<metadata_edit> edits;
    std::size_t next_set = 0, next_drop = 0;
    for (const CLI::Option* option : app.parse_order()) {
        if (option->get_name() == "--set-metadata") {
            const std::string& kv = opts.set_metadata.at(next_set++);
            const std::size_t eq = kv.find('=');
            if (eq == std::string::npos)
                throw usage_error("--set-metadata needs KEY=VALUE, got " + st::detail::quote(kv));
            edits.push_back({false, kv.substr(0, eq), kv.substr(eq + 1)});
        } else if (option->get_name() == "--drop-metadata") {
            edits.push_back({true, opts.drop_metadata.at(next_drop++), {}});
        }
    }
    return edits;
}

// The tensors to write, in input order: --only (each once; a name IN lacks is an error), then
// --filter and --exclude, then --rename and --to-dtype.
inline std::vector<planned_tensor> plan_tensors(const checkpoint& in, const rewrite_options& opts,
                                                const name_filter& filter, const std::vector<rename_rule>& renames,
                                                std::optional<st::dtype> to) {
    std::vector<std::string> only = opts.only;
    std::sort(only.begin(), only.end());
    only.erase(std::unique(only.begin(), only.end()), only.end());
    for (const std::string& name : only) (void)in.tensor(name);  // tensor_not_found if absent
    std::vector<planned_tensor> out;
    std::map<std::string, std::string> source_of;  // output name -> input name
    for (const checkpoint::entry& e : in.entries()) {
        const std::string name(e.view.name());
        if (!only.empty() && !std::binary_search(only.begin(), only.end(), name)) continue;
        if (!filter.keeps(name)) continue;
        std::string renamed = name;
        for (const rename_rule& r : renames) renamed = std::regex_replace(renamed, r.pattern, r.replacement);
        const auto [at, fresh] = source_of.emplace(renamed, name);
        if (!fresh)
            throw st::error(st::errc::duplicate_name, "--rename gives tensors " + st::detail::quote(at->second) +
                                                          " and " + st::detail::quote(name) + " the same name " +
                                                          st::detail::quote(renamed));
        const st::dtype dtype = to && recodable(e.view.dtype()) ? *to : e.view.dtype();
        out.push_back({e.view, std::move(renamed), dtype});
    }
    return out;
}

// IN's metadata with the edits applied: a single file's __metadata__, or for a sharded IN the
// first shard's (what every shard carries, such as {"format": "pt"}).
inline std::optional<st::metadata_map> edited_metadata(const checkpoint& in, const std::vector<metadata_edit>& edits) {
    std::optional<st::metadata_map> metadata;
    const st::metadata_map* base = nullptr;
    if (!in.is_sharded()) base = in.single().metadata();
    else if (in.sharded().shard_count() != 0) base = in.sharded().shard(0).metadata();
    if (base != nullptr) metadata = *base;
    for (const metadata_edit& edit : edits) {
        if (edit.drop) {
            if (metadata) metadata->erase(edit.key);
        } else {
            if (!metadata) metadata.emplace();
            metadata->set(edit.key, edit.value);
        }
    }
    return metadata;
}

inline std::vector<st::tensor_ref> declarations(const std::vector<planned_tensor>& tensors) {
    std::vector<st::tensor_ref> decls;
    decls.reserve(tensors.size());
    for (const planned_tensor& t : tensors) decls.emplace_back(t.name, t.dtype, t.source.shape());
    return decls;
}

// Fills every tensor of writer (in the order it asks for) from its source.
inline void copy_into(st::stream_writer& writer, const std::vector<planned_tensor>& tensors) {
    std::map<std::string, const planned_tensor*, std::less<>> by_name;
    for (const planned_tensor& t : tensors) by_name.emplace(t.name, &t);
    for (std::size_t i = 0; i < writer.size(); ++i) {
        const planned_tensor& t = *by_name.at(std::string(writer.tensor(i).name));
        recode_tensor(
            t.source, t.dtype, [&](const std::byte* data, std::size_t size) { writer.write(i, data, size); },
            [](std::uint64_t bytes) { progress().advance(bytes); });
    }
    writer.commit();
}

inline std::uint64_t input_bytes(const std::vector<planned_tensor>& tensors) {
    std::uint64_t total = 0;
    for (const planned_tensor& t : tensors) total += t.source.byte_size();
    return total;
}

// The index's metadata for a sharded OUT: IN's index metadata without the computed keys.
inline nlohmann::json index_metadata(const checkpoint& in) {
    nlohmann::json extra = nlohmann::json(nlohmann::json::value_t::object);
    if (const nlohmann::json* m = in.index_metadata())
        for (auto it = m->begin(); it != m->end(); ++it)
            if (it.key() != "total_size" && it.key() != "total_parameters") extra[it.key()] = it.value();
    return extra;
}

// --max-shard-size: OUT is a folder; shards model-0000i-of-0000N.safetensors and the index as
// transformers writes them (one shard: OUT/model.safetensors and no index).
inline void write_sharded(const std::string& folder, const checkpoint& in, const std::vector<planned_tensor>& tensors,
                          const std::optional<st::metadata_map>& metadata, std::uint64_t max_shard_size,
                          const st::write_options& write) {
    const std::vector<st::tensor_ref> decls = declarations(tensors);
    const auto plan = st::plan_shards(decls, max_shard_size);
    const std::size_t count = plan.size();
    const std::string base = st::detail::as_folder(folder);
    std::vector<std::pair<std::string, std::string>> weight_map;
    std::uint64_t total_size = 0, total_parameters = 0;
    std::vector<std::string> names(count);
    for (std::size_t s = 0; s < count; ++s) {
        names[s] = count == 1 ? std::string("model.safetensors")
                              : "model-" + st::detail::five_digits(s + 1) + "-of-" + st::detail::five_digits(count) +
                                    ".safetensors";
        for (std::size_t i : plan[s]) {
            weight_map.emplace_back(tensors[i].name, names[s]);
            total_size += st::detail::planned_size(decls[i]);
            total_parameters += tensors[i].source.element_count();
        }
    }
    std::string index_text;
    if (count > 1) {
        nlohmann::json m = index_metadata(in);
        m["total_size"] = total_size;
        m["total_parameters"] = total_parameters;
        index_text = st::index_json(weight_map, m);
    }
    if (!folder.empty()) st::detail::make_folders(folder);
    for (std::size_t s = 0; s < count; ++s) {
        std::vector<planned_tensor> part;
        for (std::size_t i : plan[s]) part.push_back(tensors[i]);
        st::stream_writer writer(base + names[s], declarations(part), metadata, write);
        copy_into(writer, part);
    }
    if (count > 1) st::detail::write_text_file(base + "model.safetensors.index.json", index_text, write);
}

inline int run_rewrite(const CLI::App& app, const rewrite_options& opts) {
    // Every flag is checked before IN is opened.
    st::write_options write;
    if (app.count("--align")) write.alignment = parse_alignment(opts.align);
    write.sync = !opts.no_sync;
    if (opts.progress && opts.no_progress) throw usage_error("--progress and --no-progress cannot be used together");
    // 0: one output file (a plain integer: GCC's -O3 misreads an optional here as uninitialized).
    const std::uint64_t max_shard_size = app.count("--max-shard-size") ? parse_size(opts.max_shard_size) : 0;
    if (max_shard_size != 0 && opts.output == "-") throw usage_error("--max-shard-size needs a folder as OUT, not \"-\"");
    const std::optional<st::dtype> to =
        app.count("--to-dtype") ? st::parse_dtype(opts.to_dtype) : std::optional<st::dtype>();
    const name_filter filter(app.count("--filter") ? std::optional<std::string>(opts.filter) : std::nullopt,
                             app.count("--exclude") ? std::optional<std::string>(opts.exclude) : std::nullopt);
    const auto renames = parse_renames(opts.rename);
    const auto edits = metadata_edits(app, opts);

    const checkpoint in(opts.input);
    const std::vector<planned_tensor> tensors = plan_tensors(in, opts, filter, renames, to);
    const std::optional<st::metadata_map> metadata = edited_metadata(in, edits);
    const progress_mode mode = opts.progress ? progress_mode::on : opts.no_progress ? progress_mode::off
                                                                                     : progress_mode::automatic;
    const std::uint64_t total = input_bytes(tensors);

    if (max_shard_size != 0) {
        if (wants_progress(mode, total)) progress().start("rewriting", total);
        write_sharded(opts.output, in, tensors, metadata, max_shard_size, write);
    } else {
        // The writer validates and plans everything here, before OUT is touched.
        std::optional<st::stream_writer> writer;
        if (opts.output == "-") {
            binary_stdout();
            writer.emplace([](const std::byte* data, std::size_t size) { write_stdout(data, size); },
                           declarations(tensors), metadata, write);
        } else {
            writer.emplace(opts.output, declarations(tensors), metadata, write);
        }
        if (wants_progress(mode, total)) progress().start("rewriting", total);
        copy_into(*writer, tensors);
    }
    progress().finish();
    return exit_ok;
}

} // namespace rewrite_detail

inline const char rewrite_description[] =
    "Copies the checkpoint IN (a .safetensors file, an index or a folder) to OUT through the streaming\n"
    "writer, in the reference writer's layout: tensors by dtype (descending) then name, compact header\n"
    "JSON, padding to 8 bytes. Without options a file the reference wrote is reproduced byte for byte.\n"
    "Metadata keeps its order; metadata edits apply in the order given. OUT is written to a temporary\n"
    "file in its folder, flushed, and renamed over OUT, so readers see the old file or the new one and\n"
    "a failure leaves OUT as it was. IN and OUT may be the same file. If OUT is a symbolic link, the link\n"
    "itself is replaced by the new file. The new file's permissions follow the umask. OUT \"-\" writes to\n"
    "standard output (no temporary file).\n"
    "With --max-shard-size, OUT is a folder that gets model-0000i-of-0000N.safetensors shards and\n"
    "model.safetensors.index.json, as transformers' save_pretrained writes them.";

inline command add_rewrite(CLI::App& root) {
    auto opts = std::make_shared<rewrite_options>();
    CLI::App* app = root.add_subcommand("rewrite", "Copy a checkpoint with edits (metadata, names, dtypes, shards)");
    app->description(rewrite_description);
    app->add_option("--set-metadata", opts->set_metadata,
                    "set metadata key K to value V (split at the first '='): replaced in place if K exists, "
                    "else added at the end; creates the metadata if IN has none")
        ->type_name("K=V")
        ->allow_extra_args(false);
    app->add_option("--drop-metadata", opts->drop_metadata,
                    "remove metadata key K (nothing happens if it is absent)")
        ->type_name("K")
        ->allow_extra_args(false);
    app->add_option("--only", opts->only, "copy tensor NAME and no others unless named too (repeatable); "
                                          "a NAME that IN does not have is an error")
        ->type_name("NAME")
        ->allow_extra_args(false);
    app->add_option("--filter", opts->filter, "copy only tensors whose name contains a match for REGEX (ECMAScript)")
        ->type_name("REGEX");
    app->add_option("--exclude", opts->exclude, "leave out tensors whose name contains a match for REGEX")
        ->type_name("REGEX");
    app->add_option("--rename", opts->rename,
                    "rename tensors: every match of REGEX in a name is replaced by REPLACEMENT ($1, $2, ... "
                    "and $& refer to the match; repeatable, applied in order)")
        ->type_name("REGEX=REPLACEMENT")
        ->allow_extra_args(false);
    app->add_option("--to-dtype", opts->to_dtype,
                    "convert floating-point tensors to DTYPE, rounding to nearest even (as NumPy's astype); "
                    "integer, BOOL and C64 tensors are copied as they are")
        ->check(CLI::IsMember({"F16", "BF16", "F32"}))
        ->type_name("DTYPE");
    app->add_option("--max-shard-size", opts->max_shard_size,
                    "write a sharded checkpoint into the folder OUT with at most SIZE bytes of tensor data per "
                    "shard (5GB, 500MB, 2GiB, or bytes; powers of 1000 for GB/MB/KB, as huggingface_hub)")
        ->type_name("SIZE");
    app->add_option("--align", opts->align,
                    "pad the header so the data section starts at a multiple of N bytes (a positive multiple of "
                    "8; default 8, the reference layout)")
        ->type_name("N");
    app->add_flag("--no-sync", opts->no_sync, "skip fsync of the files and their folder: faster, still atomic for "
                                              "other processes, but may not survive a power loss");
    app->add_flag("--progress", opts->progress, "show a progress line on standard error (by default only on a "
                                                "terminal and for at least 64 MiB of tensors)");
    app->add_flag("--no-progress", opts->no_progress, "never show it");
    app->add_option("IN", opts->input, "safetensors file, index or checkpoint folder")->required();
    app->add_option("OUT", opts->output, "the file to write, \"-\" for standard output, or a folder with "
                                         "--max-shard-size")
        ->required();
    return {app, [app, opts] { return rewrite_detail::run_rewrite(*app, *opts); }};
}

} // namespace cli
