// safetensors command: inspect (a table of the tensors and the metadata, or JSON) and dump
// (one tensor's raw bytes, or the part a slice selects). safetensors-inspect is this command.
//
//   safetensors inspect FILE...                      table of tensors, summary, metadata
//   safetensors inspect --json FILE                  {"metadata": ..., "tensors": ...}
//   safetensors inspect --sort size --filter REGEX FILE
//   safetensors dump FILE NAME [--slice SPEC]        raw little-endian bytes on stdout
//
// The file is untrusted input: every name, key and value is escaped before it is printed, so
// no control character (C0, DEL, C1) from the file reaches the terminal. Every input is
// opened and checked before anything is written, so on any error standard output stays
// empty; the reports are then written in pieces as they are made (stdout_buffer), never
// whole in memory.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "output.hpp"

namespace cli {

namespace inspect_detail {

enum class sort_key { offset, name, size };

// What is shown of one input: the rows after --filter and --sort.
struct listing {
    checkpoint input;
    using row = checkpoint::entry;
    std::vector<row> rows;
    std::size_t total_count = 0;  // before --filter
    bool filtered = false;
};

inline listing make_listing(const std::string& path, const name_filter& filter, sort_key sort) {
    // Sharded: shards and weight_map agree, so listing the shards lists the map.
    listing out{checkpoint(path), {}, 0, filter.active()};
    out.rows = out.input.entries();
    out.total_count = out.rows.size();
    if (out.filtered)
        out.rows.erase(std::remove_if(out.rows.begin(), out.rows.end(),
                                      [&](const listing::row& r) { return !filter.keeps(r.view.name()); }),
                       out.rows.end());
    switch (sort) {
        case sort_key::offset: break;  // already shard by shard, in file order
        case sort_key::name:
            std::sort(out.rows.begin(), out.rows.end(),
                      [](const listing::row& a, const listing::row& b) { return a.view.name() < b.view.name(); });
            break;
        case sort_key::size:
            std::stable_sort(out.rows.begin(), out.rows.end(), [](const listing::row& a, const listing::row& b) {
                return a.view.byte_size() > b.view.byte_size();
            });
            break;
    }
    return out;
}

inline std::string bytes_text(std::uint64_t bytes) { return std::to_string(bytes) + " bytes (" + human_size(bytes) + ")"; }

// nlohmann's dump() escapes C0 controls but, with ensure_ascii off, passes DEL and C1
// controls through raw; escape those too (still valid JSON: they sit inside strings).
inline std::string escape_json_text(const std::string& json) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); ++i) {
        auto c = static_cast<unsigned char>(json[i]);
        unsigned code = 0x100;
        if (c == 0x7f) code = c;
        else if (c == 0xC2 && i + 1 < json.size()) {
            auto next = static_cast<unsigned char>(json[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                code = next;
                ++i;
            }
        }
        if (code == 0x100) {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\u00";
            out.push_back(hex[code >> 4]);
            out.push_back(hex[code & 15]);
        }
    }
    return out;
}

// Deepest nesting of [ and { outside string literals; stops counting past limit.
inline bool nesting_within(std::string_view text, std::size_t limit) {
    std::size_t depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

// Metadata values that hold a JSON object or array (LoRA trainers store ss_* settings this
// way) are parsed and pretty-printed; anything else, and JSON nested deeper than this, is
// shown as a plain string.
inline constexpr std::size_t max_pretty_depth = 64;

inline std::optional<nlohmann::ordered_json> parse_embedded_json(std::string_view value) {
    if (value.empty() || (value.front() != '{' && value.front() != '[')) return std::nullopt;
    if (!nesting_within(value, max_pretty_depth)) return std::nullopt;
    auto parsed = nlohmann::ordered_json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return std::nullopt;
    return parsed;
}

inline void append_padded(std::string& out, const std::string& cell, std::size_t width, bool right) {
    std::size_t w = display_width(cell);
    std::string pad(w < width ? width - w : 0, ' ');
    if (right) out += pad;
    out += cell;
    if (!right) out += pad;
}

// A value of an index's metadata for the table: strings quoted and escaped, others as JSON.
inline std::string index_value_text(const nlohmann::json& value) {
    if (!value.is_string()) return value.dump(-1, ' ', /*ensure_ascii=*/true);
    return quoted_text(value.get_ref<const std::string&>());
}

inline void append_metadata(std::string& out, const st::metadata_map& metadata) {
    out += "metadata: " + std::to_string(metadata.size()) + (metadata.size() == 1 ? " entry\n" : " entries\n");
    for (const auto& [key, value] : metadata) {
        out += "  " + printable(key) + " = ";
        if (auto json = parse_embedded_json(value)) {
            // Continuation lines line up under the key.
            std::string text = escape_json_text(json->dump(2));
            for (char c : text) {
                out.push_back(c);
                if (c == '\n') out += "  ";
            }
        } else {
            out += '"';
            std::string shown = printable(value);
            for (char c : shown) {
                if (c == '"') out += "\\\"";
                else out.push_back(c);
            }
            out += '"';
        }
        out += '\n';
    }
}

// The table report, appended to buffer (written out whenever it holds a piece).
inline void write_table_report(const listing& l, stdout_buffer& buffer) {
    const bool sharded = l.input.is_sharded();
    const int columns = sharded ? 6 : 5;
    using cells = std::string[6];
    static const cells headings = {"NAME", "DTYPE", "SHAPE", "SIZE", "DATA_OFFSETS", "SHARD"};
    // A row's cells are made twice, for the column widths and for its line, rather than kept:
    // a million rows of six strings would take hundreds of megabytes.
    auto fill = [&](const listing::row& r, cells& row) {
        const st::tensor_view& view = r.view;
        const auto offsets = view.data_offsets();
        row[0] = printable(view.name());
        row[1] = st::to_string(view.dtype());
        row[2] = shape_text(view.shape());
        row[3] = human_size(view.byte_size());
        row[4] = "[" + std::to_string(offsets.first) + ", " + std::to_string(offsets.second) + "]";
        row[5] = sharded ? printable(l.input.sharded().shard_names()[r.shard]) : std::string();
    };
    cells row;
    std::size_t width[6];
    for (int c = 0; c < columns; ++c) width[c] = headings[c].size();
    std::uint64_t total_bytes = 0;
    struct dtype_total {
        std::size_t count = 0;
        std::uint64_t bytes = 0;
    };
    std::vector<dtype_total> by_dtype(st::dtype_count);
    for (const auto& r : l.rows) {
        fill(r, row);
        for (int c = 0; c < columns; ++c) width[c] = std::max(width[c], display_width(row[c]));
        const st::tensor_view& view = r.view;
        total_bytes += view.byte_size();
        auto& d = by_dtype[static_cast<std::size_t>(view.dtype())];
        ++d.count;
        d.bytes += view.byte_size();
    }

    std::string& out = buffer.text();
    const bool index = l.input.is_index();
    out += (index ? "index: " : "file: ") + printable(index ? l.input.index_shown() : l.input.shown()) + "\n\n";
    if (!l.rows.empty()) {
        auto line = [&](const cells& values) {
            for (int c = 0; c < columns; ++c) {
                if (c) out += "  ";
                if (c == columns - 1) out += values[c];  // last column: no trailing spaces
                else append_padded(out, values[c], width[c], c == 3);
            }
            out += '\n';
            buffer.spill();
        };
        line(headings);
        for (const auto& r : l.rows) {
            fill(r, row);
            line(row);
        }
        out += '\n';
    }
    out += "tensors: " + std::to_string(l.rows.size());
    if (l.filtered) out += " of " + std::to_string(l.total_count) + " (--filter)";
    out += "\ntotal bytes: " + std::to_string(total_bytes) + " (" + human_size(total_bytes) + ")\n";
    // Per dtype: largest total first, then by name.
    std::vector<std::size_t> dtypes;
    for (std::size_t d = 0; d < by_dtype.size(); ++d)
        if (by_dtype[d].count != 0) dtypes.push_back(d);
    std::sort(dtypes.begin(), dtypes.end(), [&](std::size_t a, std::size_t b) {
        if (by_dtype[a].bytes != by_dtype[b].bytes) return by_dtype[a].bytes > by_dtype[b].bytes;
        return st::to_string(static_cast<st::dtype>(a)) < st::to_string(static_cast<st::dtype>(b));
    });
    if (!dtypes.empty()) {
        out += "by dtype:\n";
        for (std::size_t d : dtypes) {
            const auto& t = by_dtype[d];
            std::string name(st::to_string(static_cast<st::dtype>(d)));
            name.resize(std::max<std::size_t>(name.size(), 11), ' ');
            out += "  " + name + " " + std::to_string(t.count) + (t.count == 1 ? " tensor, " : " tensors, ") +
                   bytes_text(t.bytes) + "\n";
        }
    }

    if (!sharded) {
        const st::file& f = l.input.single();
        const auto& header = f.header();
        out += "header size: " + std::to_string(header.header_size()) + " bytes (data starts at byte " +
               std::to_string(header.data_offset()) + ")\n";
        if (const st::metadata_map* metadata = f.metadata()) append_metadata(out, *metadata);
        else out += "metadata: none\n";
        return;
    }

    const st::sharded_file& m = l.input.sharded();
    out += "shards: " + std::to_string(m.shard_count()) + "\n";
    for (std::size_t s = 0; s < m.shard_count(); ++s) {
        const st::file& f = m.shard(s);
        std::uint64_t bytes = f.header().data_size();
        out += "  " + printable(m.shard_names()[s]) + "  " + std::to_string(f.size()) +
               (f.size() == 1 ? " tensor, " : " tensors, ") + bytes_text(bytes) + "\n";
    }
    if (!index) {
        if (const st::metadata_map* metadata = m.metadata()) append_metadata(out, *metadata);
        else out += "metadata: none\n";
        return;
    }
    const nlohmann::json* metadata = m.metadata_json();
    if (!metadata) {
        out += "metadata: none\n";
        return;
    }
    out += "metadata: " + std::to_string(metadata->size()) + (metadata->size() == 1 ? " entry\n" : " entries\n");
    for (auto it = metadata->begin(); it != metadata->end(); ++it)
        out += "  " + printable(it.key()) + " = " + index_value_text(it.value()) + "\n";
}

// Built by hand rather than through nlohmann::ordered_json, whose inserts are linear (a
// header can hold a million tensors); strings are escaped by append_json_string. Appended to
// out, which is written out a piece at a time; the lines after the first start with indent (a
// report inside the object of several inputs), and the report ends without a newline.
inline void write_json_report(const listing& l, const std::string& indent, stdout_buffer& out) {
    const bool sharded = l.input.is_sharded();
    const std::string newline = "\n" + indent;
    std::string& text = out.text();
    text += "{" + newline + "  \"metadata\": ";
    const st::metadata_map* metadata = l.input.metadata();
    if (l.input.is_index()) {
        // The index's own JSON values (numbers stay numbers), ASCII only.
        const nlohmann::json* values = l.input.index_metadata();
        if (!values) {
            text += "null";
        } else if (values->empty()) {
            text += "{}";
        } else {
            text += "{";
            for (auto it = values->begin(); it != values->end(); ++it) {
                text += (it == values->begin() ? "" : ",") + newline + "    ";
                append_json_string(text, it.key());
                text += ": " + it.value().dump(-1, ' ', /*ensure_ascii=*/true);
            }
            text += newline + "  }";
        }
    } else if (metadata) {
        if (metadata->empty()) {
            text += "{}";
        } else {
            text += "{";
            for (auto it = metadata->begin(); it != metadata->end(); ++it) {
                text += (it == metadata->begin() ? "" : ",") + newline + "    ";
                append_json_string(text, it->first);
                text += ": ";
                append_json_string(text, it->second);
            }
            text += newline + "  }";
        }
    } else {
        text += "null";
    }
    text += "," + newline + "  \"tensors\": ";
    if (l.rows.empty()) {
        text += "{}";
    } else {
        text += "{";
        for (std::size_t i = 0; i < l.rows.size(); ++i) {
            const st::tensor_view& view = l.rows[i].view;
            if (i != 0) text += ',';
            text += newline;
            text += "    ";
            append_json_string(text, view.name());
            text += ": {\"dtype\": \"";
            text += st::to_string(view.dtype());
            text += "\", \"shape\": ";
            text += shape_text(view.shape());
            const auto offsets = view.data_offsets();
            text += ", \"data_offsets\": [";
            text += std::to_string(offsets.first);
            text += ", ";
            text += std::to_string(offsets.second);
            text += ']';
            if (sharded) {
                text += ", \"shard\": ";
                append_json_string(text, l.input.sharded().shard_names()[l.rows[i].shard]);
            }
            text += '}';
            out.spill();
        }
        text += newline + "  }";
    }
    if (sharded) {
        text += "," + newline + "  \"shards\": [";
        const auto& names = l.input.sharded().shard_names();
        for (std::size_t s = 0; s < names.size(); ++s) {
            text += s ? ", " : "";
            append_json_string(text, names[s]);
        }
        text += "]";
    }
    text += newline + "}";
}

// The bytes of a tensor_view or a tensor_slice (packed, row-major), read in chunks through
// read_bytes: a file truncated after open gives an error instead of a SIGBUS. Over HTTP a chunk
// is a read: 32 MiB are 4 requests of 8 MiB in flight at once, where 1 MiB would be one.
// A long transfer (64 MiB or more, over the network, stderr a terminal) shows a progress line.
template <class Bytes>
void dump_bytes(const Bytes& source, bool remote) {
    binary_stdout();
    const std::size_t chunk = std::size_t(1) << (remote ? 25 : 20);
    std::vector<unsigned char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size(), chunk)));
    const bool show = remote && wants_progress(progress_mode::automatic, source.byte_size());
    if (show) progress().start("fetching", source.byte_size());
    for (std::uint64_t done = 0; done < source.byte_size();) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size() - done, chunk));
        source.read_bytes(done, buffer.data(), n);
        write_stdout(buffer.data(), n);
        if (show) progress().advance(n);
        done += n;
    }
    if (show) progress().finish();
}

inline void dump_tensor(const std::string& path, const std::string& name, const std::optional<std::string>& slice) {
    // tensor_not_found (or a broken shard) before any output; a bad SPEC too.
    const checkpoint input(path, /*validate=*/false);
    const st::tensor_view view = input.tensor(name);
    if (slice) dump_bytes(view.slice(*slice), input.is_remote());
    else dump_bytes(view, input.is_remote());
}

} // namespace inspect_detail

struct inspect_options {
    bool json = false;
    std::string sort = "offset";
    std::string filter;
    std::string dump;
    std::string slice;
    std::vector<std::string> files;
};

inline const char inspect_description[] =
    "Shows the tensors and metadata of safetensors files or sharded checkpoints. FILE is a\n"
    ".safetensors file, a model.safetensors.index.json (a name ending in \".json\"), or a folder\n"
    "holding one (or holding a model.safetensors). A sharded checkpoint is checked first (every\n"
    "shard opened, shards and weight_map agree, total_size right) and shown as one table with\n"
    "the shard of each tensor. The table lists name, dtype, shape, size and data offsets, then a\n"
    "summary (count, total bytes, per dtype, header size or shards) and the metadata; metadata\n"
    "values holding JSON objects or arrays are pretty-printed. Names, keys and values are\n"
    "printed with control characters escaped.";

inline command add_inspect(CLI::App& root, const std::string& name = "inspect") {
    auto opts = std::make_shared<inspect_options>();
    CLI::App* app = root.add_subcommand(name, "Show the tensors and metadata of checkpoints");
    app->description(inspect_description);
    app->add_flag("--json", opts->json,
                  "print {\"metadata\": {...} or null, \"tensors\": {NAME: {\"dtype\", \"shape\", \"data_offsets\"}}}"
                  " (an index adds \"shard\" to each tensor and a \"shards\" list); several FILEs: one object"
                  " mapping each FILE to its report");
    app->add_option("--sort", opts->sort,
                    "order the rows: offset (file order, shard by shard; the default), name (bytewise) or size "
                    "(largest first, ties in offset order)")
        ->type_name("KEY");
    app->add_option("--filter", opts->filter,
                    "show only tensors whose name contains a match for REGEX (ECMAScript; anchor with ^ and $); "
                    "the summary counts the shown tensors")
        ->type_name("REGEX");
    app->add_option("--dump", opts->dump, "write the raw bytes of tensor NAME to standard output (as `dump`)")
        ->type_name("NAME");
    app->add_option("--slice", opts->slice, "with --dump: only the elements SPEC selects (\"0, :, 1:3\")")
        ->type_name("SPEC");
    app->add_option("FILE", opts->files, "safetensors file, index or checkpoint folder")->required();
    return {app, [app, opts] {
                const bool dump = app->count("--dump") != 0;
                if (opts->sort != "offset" && opts->sort != "name" && opts->sort != "size")
                    throw usage_error("--sort needs size, name or offset, got " + st::detail::quote(opts->sort));
                const bool filtered = app->count("--filter") != 0;
                if (dump && opts->json) throw usage_error("--json and --dump cannot be used together");
                if (app->count("--slice") && !dump) throw usage_error("--slice needs --dump NAME");
                if (dump && (app->count("--sort") || filtered))
                    throw usage_error("--sort and --filter cannot be used with --dump");
                if (dump && opts->files.size() != 1)
                    throw usage_error("--dump needs one FILE, got " + std::to_string(opts->files.size()));
                const name_filter filter(filtered ? std::optional<std::string>(opts->filter) : std::nullopt,
                                         std::nullopt);
                if (dump) {
                    inspect_detail::dump_tensor(opts->files.front(), opts->dump,
                                                app->count("--slice") ? std::optional<std::string>(opts->slice)
                                                                      : std::nullopt);
                    return exit_ok;
                }
                const auto key = opts->sort == "name"   ? inspect_detail::sort_key::name
                                 : opts->sort == "size" ? inspect_detail::sort_key::size
                                                        : inspect_detail::sort_key::offset;
                // Every input opened and checked before anything is written.
                std::vector<inspect_detail::listing> listings;
                for (const std::string& file : opts->files)
                    listings.push_back(inspect_detail::make_listing(file, filter, key));
                write_reports(
                    listings.size(), opts->json, [&](std::size_t i) { return listings[i].input.shown(); },
                    [&](std::size_t i, stdout_buffer& out) { inspect_detail::write_table_report(listings[i], out); },
                    [&](std::size_t i, const std::string& indent, stdout_buffer& out) {
                        inspect_detail::write_json_report(listings[i], indent, out);
                    });
                return exit_ok;
            }};
}

inline command add_dump(CLI::App& root) {
    struct dump_options {
        std::string file;
        std::string name;
        std::string slice;
    };
    auto opts = std::make_shared<dump_options>();
    CLI::App* app = root.add_subcommand("dump", "Write one tensor's raw bytes to standard output");
    app->description("Writes the raw little-endian bytes of tensor NAME (or of the elements --slice selects, "
                     "packed in row-major order) to standard output, and nothing else.");
    app->add_option("--slice", opts->slice, "only the elements SPEC selects: Python/torch basic indexing, "
                                            "e.g. \"0, :, 1:3\" or \"..., ::2\"")
        ->type_name("SPEC");
    app->add_option("FILE", opts->file, "safetensors file, index or checkpoint folder")->required();
    app->add_option("NAME", opts->name, "the tensor")->required();
    return {app, [app, opts] {
                inspect_detail::dump_tensor(opts->file, opts->name,
                                            app->count("--slice") ? std::optional<std::string>(opts->slice)
                                                                  : std::nullopt);
                return exit_ok;
            }};
}

} // namespace cli
