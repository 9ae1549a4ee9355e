// safetensors-inspect: show what a .safetensors file or a sharded checkpoint holds, as a
// table or as JSON, or copy one tensor's raw bytes to standard output.
//
//   safetensors-inspect FILE                 table of tensors, summary, then the metadata
//   safetensors-inspect --json FILE          {"metadata": ..., "tensors": ...} for scripts
//   safetensors-inspect --sort size|name|offset --filter REGEX FILE
//                                            order and select the rows (table and JSON)
//   safetensors-inspect --dump NAME FILE     the tensor's raw little-endian bytes
//   safetensors-inspect --dump NAME --slice SPEC FILE
//                                            only the part SPEC selects ("0, :, 1:3")
//   safetensors-inspect --help
//
// FILE may be a model.safetensors.index.json or a folder holding one (or a model.safetensors):
// every shard is then shown as one table with a SHARD column (a "shard" field in JSON).
//
// The file is untrusted input: every name, key and value is escaped before it is printed, so
// no control character (C0, DEL, C1) from the file reaches the terminal. Output is built in
// memory and written only once everything has succeeded, so on any error standard output
// stays empty and standard error holds exactly one line, "error: <message>" (exit status 1).
#include <safetensors/safetensors.hpp>
#include <safetensors/sharded.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#endif

namespace st = safetensors;

namespace {

const char usage_text[] =
    "usage: safetensors-inspect [--json] [--sort KEY] [--filter REGEX] FILE\n"
    "       safetensors-inspect --dump NAME [--slice SPEC] FILE\n"
    "       safetensors-inspect --help\n"
    "\n"
    "Shows the tensors and metadata of a safetensors file or of a sharded checkpoint.\n"
    "FILE is a .safetensors file, a model.safetensors.index.json (a name ending in\n"
    "\".json\"), or a folder holding one (or holding a model.safetensors). A sharded\n"
    "checkpoint is checked first (every shard opened, shards and weight_map agree,\n"
    "total_size right) and shown as one table with the shard of each tensor.\n"
    "\n"
    "options:\n"
    "  (none)        a table of the tensors (name, dtype, shape, size, data offsets, and\n"
    "                for an index the shard), then a summary: tensor count, total bytes,\n"
    "                count and bytes per dtype, the header size (or the shards), then\n"
    "                the metadata in header order (an index's in key order); metadata\n"
    "                values holding JSON objects or arrays are pretty-printed. Sizes\n"
    "                are shown in binary units (\"1.5 MiB\"), totals also in bytes\n"
    "  --json        print {\"metadata\": {...} or null, \"tensors\": {NAME: {\"dtype\": ...,\n"
    "                \"shape\": [...], \"data_offsets\": [begin, end]}}} with metadata in\n"
    "                header order (2-space indent, one tensor per line); exact byte\n"
    "                offsets only. For an index, metadata is the index's, each tensor\n"
    "                has a \"shard\" field, and \"shards\": [names] follows\n"
    "  --sort KEY    order the rows by KEY: offset (the default: file order, shard by\n"
    "                shard for an index), name (bytewise), or size (largest first,\n"
    "                ties in offset order)\n"
    "  --filter REGEX\n"
    "                show only tensors whose name contains a match for REGEX\n"
    "                (ECMAScript syntax, as std::regex; anchor with ^ and $); the\n"
    "                summary then counts the shown tensors\n"
    "  --dump NAME   write the raw bytes of tensor NAME to standard output, nothing else\n"
    "  --slice SPEC  with --dump: only the elements SPEC selects, in row-major order;\n"
    "                SPEC is Python/torch basic indexing, e.g. \"0, :, 1:3\" or \"..., ::2\"\n"
    "  -h, --help    show this help and exit\n"
    "  --            end of options (for a FILE that starts with '-')\n"
    "\n"
    "Names, keys and values are printed with control characters escaped. On error the\n"
    "exit status is 1, standard output is empty and standard error holds one line,\n"
    "\"error: <message>\".\n";

// A usage mistake: reported like a file error (one "error: " line, exit 1).
struct usage_error {
    std::string message;
};

enum class mode { table, json, dump };
enum class sort_key { offset, name, size };

struct options {
    mode what = mode::table;
    bool help = false;
    std::string file;
    std::string tensor_name;  // --dump NAME
    std::optional<std::string> slice;  // --slice SPEC (refines --dump)
    sort_key sort = sort_key::offset;
    std::optional<std::string> filter;  // --filter REGEX
};

// Escapes a string from the file so it can be shown on a terminal: backslash, C0 controls,
// DEL and C1 controls (UTF-8 C2 80..C2 9F) become escape sequences; everything else
// (including other UTF-8) passes through. Not truncated: a table must show whole names.
// Backslashes are doubled (so the escapes are unambiguous) unless keep_backslash is set,
// for text that is already escaped, such as the library's error messages.
std::string printable(std::string_view text, bool keep_backslash = false) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == 0xC2 && i + 1 < text.size()) {
            auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                out += "\\u00";
                out.push_back(hex[next >> 4]);
                out.push_back(hex[next & 15]);
                ++i;
                continue;
            }
        }
        switch (c) {
            case '\\': out += keep_backslash ? "\\" : "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    return out;
}

// A string as a JSON string literal. The header is validated UTF-8, so passing UTF-8 through
// gives valid JSON; C0, DEL and C1 controls are written as \u00XX so the output is also safe
// on a terminal (the same escaping applied to nlohmann's output below).
void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        unsigned escape = 0x100;  // none
        if (c == 0xC2 && i + 1 < text.size()) {
            auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                escape = next;
                ++i;
            }
        }
        if (escape == 0x100) {
            switch (c) {
                case '"': out += "\\\""; continue;
                case '\\': out += "\\\\"; continue;
                case '\n': out += "\\n"; continue;
                case '\t': out += "\\t"; continue;
                case '\r': out += "\\r"; continue;
                case '\b': out += "\\b"; continue;
                case '\f': out += "\\f"; continue;
                default: break;
            }
            if (c < 0x20 || c == 0x7f) escape = c;
        }
        if (escape != 0x100) {
            out += "\\u00";
            out.push_back(hex[escape >> 4]);
            out.push_back(hex[escape & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

// nlohmann's dump() escapes C0 controls but, with ensure_ascii off, passes DEL and C1
// controls through raw; escape those too (still valid JSON: they sit inside strings).
std::string escape_json_text(const std::string& json) {
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
bool nesting_within(std::string_view text, std::size_t limit) {
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
constexpr std::size_t max_pretty_depth = 64;

std::optional<nlohmann::ordered_json> parse_embedded_json(std::string_view value) {
    if (value.empty() || (value.front() != '{' && value.front() != '[')) return std::nullopt;
    if (!nesting_within(value, max_pretty_depth)) return std::nullopt;
    auto parsed = nlohmann::ordered_json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return std::nullopt;
    return parsed;
}

// Width in terminal columns, approximately: one per UTF-8 code point.
std::size_t display_width(std::string_view text) {
    std::size_t n = 0;
    for (char c : text)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

void append_padded(std::string& out, const std::string& cell, std::size_t width, bool right) {
    std::size_t w = display_width(cell);
    std::string pad(w < width ? width - w : 0, ' ');
    if (right) out += pad;
    out += cell;
    if (!right) out += pad;
}

std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

// "642 B", "37.5 KiB", "1.5 MiB": binary units with one decimal.
std::string human_size(std::uint64_t bytes) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    value /= 1024;
    // Step up while the value would print as 1024.0 or more.
    while (value >= 1023.95 && unit + 1 < sizeof units / sizeof units[0]) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

std::string bytes_text(std::uint64_t bytes) { return std::to_string(bytes) + " bytes (" + human_size(bytes) + ")"; }

// What is shown: one file, or every shard of an index; the rows after --filter and --sort.
struct listing {
    std::string path;
    std::optional<st::file> single;
    std::optional<st::sharded_file> sharded;
    struct row {
        st::tensor_view view;
        std::size_t shard;
    };
    std::vector<row> rows;
    std::size_t total_count = 0;  // before --filter
    bool filtered = false;
};

bool is_sharded_path(const std::string& path) {
    return st::detail::is_directory(path) || (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0);
}

listing make_listing(const options& opts) {
    listing out;
    out.path = opts.file;
    if (is_sharded_path(opts.file)) {
        out.sharded = st::open_sharded(opts.file);
        out.sharded->validate();  // shards and weight_map agree: listing the shards lists the map
        for (std::size_t s = 0; s < out.sharded->shard_count(); ++s)
            for (const st::tensor_view& view : out.sharded->shard(s)) out.rows.push_back({view, s});
    } else {
        out.single = st::open(opts.file);
        for (const st::tensor_view& view : *out.single) out.rows.push_back({view, 0});
    }
    out.total_count = out.rows.size();
    if (opts.filter) {
        // Compiled before the file is opened (see run), so a bad REGEX is a usage error.
        const std::regex pattern(*opts.filter, std::regex::ECMAScript);
        std::vector<listing::row> kept;
        for (auto& r : out.rows)
            if (std::regex_search(std::string(r.view.name()), pattern)) kept.push_back(std::move(r));
        out.rows = std::move(kept);
        out.filtered = true;
    }
    switch (opts.sort) {
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

// A value of an index's metadata for the table: strings quoted and escaped, others as JSON.
std::string index_value_text(const nlohmann::json& value) {
    if (!value.is_string()) return value.dump(-1, ' ', /*ensure_ascii=*/true);
    std::string out = "\"";
    for (char c : printable(value.get_ref<const std::string&>())) {
        if (c == '"') out += "\\\"";
        else out.push_back(c);
    }
    return out + "\"";
}

void append_metadata(std::string& out, const st::metadata_map& metadata) {
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

std::string table_report(const listing& l) {
    const bool sharded = l.sharded.has_value();
    const int columns = sharded ? 6 : 5;
    struct row {
        std::string cells[6];
    };
    static const char* const headings[6] = {"NAME", "DTYPE", "SHAPE", "SIZE", "DATA_OFFSETS", "SHARD"};
    std::vector<row> rows;
    rows.reserve(l.rows.size());
    std::uint64_t total_bytes = 0;
    struct dtype_total {
        std::size_t count = 0;
        std::uint64_t bytes = 0;
    };
    std::vector<dtype_total> by_dtype(st::dtype_count);
    for (const auto& r : l.rows) {
        const st::tensor_view& view = r.view;
        auto offsets = view.data_offsets();
        rows.push_back(row{{printable(view.name()), std::string(st::to_string(view.dtype())), shape_text(view.shape()),
                            human_size(view.byte_size()),
                            "[" + std::to_string(offsets.first) + ", " + std::to_string(offsets.second) + "]",
                            sharded ? printable(l.sharded->shard_names()[r.shard]) : std::string()}});
        total_bytes += view.byte_size();
        auto& d = by_dtype[static_cast<std::size_t>(view.dtype())];
        ++d.count;
        d.bytes += view.byte_size();
    }
    std::size_t width[6];
    for (int c = 0; c < columns; ++c) {
        width[c] = std::string_view(headings[c]).size();
        for (const auto& r : rows) width[c] = std::max(width[c], display_width(r.cells[c]));
    }

    std::string out;
    out += (sharded && l.sharded->is_index() ? "index: " : "file: ") + printable(sharded && l.sharded->is_index() ? l.sharded->index_path() : l.path) + "\n\n";
    if (!rows.empty()) {
        auto line = [&](const std::string (&cells)[6]) {
            for (int c = 0; c < columns; ++c) {
                if (c) out += "  ";
                if (c == columns - 1) out += cells[c];  // last column: no trailing spaces
                else append_padded(out, cells[c], width[c], c == 3);
            }
            out += '\n';
        };
        line({headings[0], headings[1], headings[2], headings[3], headings[4], headings[5]});
        for (const auto& r : rows) line(r.cells);
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
        const st::file& f = *l.single;
        const auto& header = f.header();
        out += "header size: " + std::to_string(header.header_size()) + " bytes (data starts at byte " +
               std::to_string(header.data_offset()) + ")\n";
        if (const st::metadata_map* metadata = f.metadata()) append_metadata(out, *metadata);
        else out += "metadata: none\n";
        return out;
    }

    const st::sharded_file& m = *l.sharded;
    out += "shards: " + std::to_string(m.shard_count()) + "\n";
    for (std::size_t s = 0; s < m.shard_count(); ++s) {
        const st::file& f = m.shard(s);
        std::uint64_t bytes = f.header().data_size();
        out += "  " + printable(m.shard_names()[s]) + "  " + std::to_string(f.size()) +
               (f.size() == 1 ? " tensor, " : " tensors, ") + bytes_text(bytes) + "\n";
    }
    if (!m.is_index()) {
        if (const st::metadata_map* metadata = m.metadata()) append_metadata(out, *metadata);
        else out += "metadata: none\n";
        return out;
    }
    const nlohmann::json* metadata = m.metadata_json();
    if (!metadata) {
        out += "metadata: none\n";
        return out;
    }
    out += "metadata: " + std::to_string(metadata->size()) + (metadata->size() == 1 ? " entry\n" : " entries\n");
    for (auto it = metadata->begin(); it != metadata->end(); ++it)
        out += "  " + printable(it.key()) + " = " + index_value_text(it.value()) + "\n";
    return out;
}

// Built by hand rather than through nlohmann::ordered_json, whose inserts are linear (a
// header can hold a million tensors); strings are escaped by append_json_string.
std::string json_report(const listing& l) {
    const bool sharded = l.sharded.has_value();
    std::string out = "{\n  \"metadata\": ";
    const bool index_metadata = sharded && l.sharded->is_index();
    const st::metadata_map* metadata = sharded ? l.sharded->metadata() : l.single->metadata();
    if (index_metadata) {
        // The index's own JSON values (numbers stay numbers), ASCII only.
        const nlohmann::json* values = l.sharded->metadata_json();
        if (!values) {
            out += "null";
        } else if (values->empty()) {
            out += "{}";
        } else {
            out += "{\n";
            bool first = true;
            for (auto it = values->begin(); it != values->end(); ++it) {
                if (!first) out += ",\n";
                first = false;
                out += "    ";
                append_json_string(out, it.key());
                out += ": " + it.value().dump(-1, ' ', /*ensure_ascii=*/true);
            }
            out += "\n  }";
        }
    } else if (metadata) {
        if (metadata->empty()) {
            out += "{}";
        } else {
            out += "{\n";
            bool first = true;
            for (const auto& [key, value] : *metadata) {
                if (!first) out += ",\n";
                first = false;
                out += "    ";
                append_json_string(out, key);
                out += ": ";
                append_json_string(out, value);
            }
            out += "\n  }";
        }
    } else {
        out += "null";
    }
    out += ",\n  \"tensors\": ";
    if (l.rows.empty()) {
        out += "{}";
    } else {
        out += "{\n";
        bool first = true;
        for (const auto& r : l.rows) {
            const st::tensor_view& view = r.view;
            if (!first) out += ",\n";
            first = false;
            out += "    ";
            append_json_string(out, view.name());
            out += ": {\"dtype\": \"";
            out += st::to_string(view.dtype());
            out += "\", \"shape\": " + shape_text(view.shape());
            auto offsets = view.data_offsets();
            out += ", \"data_offsets\": [" + std::to_string(offsets.first) + ", " + std::to_string(offsets.second) + "]";
            if (sharded) {
                out += ", \"shard\": ";
                append_json_string(out, l.sharded->shard_names()[r.shard]);
            }
            out += "}";
        }
        out += "\n  }";
    }
    if (sharded) {
        out += ",\n  \"shards\": [";
        const auto& names = l.sharded->shard_names();
        for (std::size_t s = 0; s < names.size(); ++s) {
            out += s ? ", " : "";
            append_json_string(out, names[s]);
        }
        out += "]";
    }
    out += "\n}\n";
    return out;
}

// A --filter REGEX that std::regex refuses is a usage error, reported before any file is read.
void check_regex(const std::string& pattern) {
    try {
        std::regex compiled(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw usage_error{"invalid --filter regular expression " + st::detail::quote(pattern) + ": " + e.what()};
    }
}

options parse_options(int argc, char** argv) {
    options opts;
    bool json = false;
    std::optional<std::string> dump;
    std::optional<std::string> slice;
    bool sorted = false;
    std::vector<std::string> positional;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            positional.push_back(arg);
            continue;
        }
        // An option that takes a value: "--name VALUE" or "--name=VALUE".
        auto value_of = [&](const std::string& name) -> std::optional<std::string> {
            if (arg == name) {
                if (i + 1 >= argc) throw usage_error{"option " + name + " needs a value (see --help)"};
                return std::string(argv[++i]);
            }
            if (arg.compare(0, name.size() + 1, name + "=") == 0) return arg.substr(name.size() + 1);
            return std::nullopt;
        };
        if (arg == "--") {
            options_done = true;
        } else if (arg == "--help" || arg == "-h") {
            opts.help = true;
        } else if (arg == "--json") {
            json = true;
        } else if (auto name = value_of("--dump")) {
            if (dump) throw usage_error{"option --dump given twice"};
            dump = std::move(*name);
        } else if (auto spec = value_of("--slice")) {
            if (slice) throw usage_error{"option --slice given twice"};
            slice = std::move(*spec);
        } else if (auto key = value_of("--sort")) {
            if (sorted) throw usage_error{"option --sort given twice"};
            sorted = true;
            if (*key == "offset") opts.sort = sort_key::offset;
            else if (*key == "name") opts.sort = sort_key::name;
            else if (*key == "size") opts.sort = sort_key::size;
            else throw usage_error{"--sort needs size, name or offset, got " + st::detail::quote(*key)};
        } else if (auto pattern = value_of("--filter")) {
            if (opts.filter) throw usage_error{"option --filter given twice"};
            check_regex(*pattern);
            opts.filter = std::move(*pattern);
        } else {
            throw usage_error{"unknown option " + st::detail::quote(arg) + " (see --help)"};
        }
    }
    if (opts.help) return opts;
    if (json && dump) throw usage_error{"--json and --dump cannot be used together"};
    if (slice && !dump) throw usage_error{"--slice needs --dump NAME"};
    if (dump && (sorted || opts.filter)) throw usage_error{"--sort and --filter cannot be used with --dump"};
    if (positional.empty()) throw usage_error{"no FILE given (see --help)"};
    if (positional.size() > 1)
        throw usage_error{"expected one FILE, got " + std::to_string(positional.size()) + " arguments (see --help)"};
    opts.file = positional.front();
    if (dump) {
        opts.what = mode::dump;
        opts.tensor_name = std::move(*dump);
        opts.slice = std::move(slice);
    } else if (json) {
        opts.what = mode::json;
    }
    return opts;
}

// Writes all of data to stdout; throws on failure.
void write_stdout(const void* data, std::size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, stdout) != size) {
        int e = errno;
        throw st::error(st::errc::io_error,
                        std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
    }
}

void flush_stdout() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        int e = errno;
        throw st::error(st::errc::io_error,
                        std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
    }
}

// The bytes of a tensor_view or a tensor_slice (packed, row-major), read in chunks through
// read_bytes: read_at on the file, so a file truncated after open gives an error instead of a
// SIGBUS from the mapping.
template <class Bytes>
void dump_bytes(const Bytes& source) {
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    constexpr std::size_t chunk = std::size_t(1) << 20;
    std::vector<unsigned char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size(), chunk)));
    for (std::uint64_t done = 0; done < source.byte_size();) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size() - done, chunk));
        source.read_bytes(done, buffer.data(), n);
        write_stdout(buffer.data(), n);
        done += n;
    }
}

int run(int argc, char** argv) {
    options opts = parse_options(argc, argv);
    if (opts.help) {
        write_stdout(usage_text, sizeof(usage_text) - 1);
        flush_stdout();
        return 0;
    }
    switch (opts.what) {
        case mode::table: {
            std::string text = table_report(make_listing(opts));
            write_stdout(text.data(), text.size());
            break;
        }
        case mode::json: {
            std::string text = json_report(make_listing(opts));
            write_stdout(text.data(), text.size());
            break;
        }
        case mode::dump: {
            // tensor_not_found (or a broken shard) before any output
            st::tensor_view view = is_sharded_path(opts.file) ? st::open_sharded(opts.file).tensor(opts.tensor_name)
                                                               : st::open(opts.file).tensor(opts.tensor_name);
            if (opts.slice)
                dump_bytes(view.slice(*opts.slice));  // a bad SPEC is reported before any output
            else
                dump_bytes(view);
            break;
        }
    }
    flush_stdout();
    return 0;
}

void report(std::string_view message) {
    // The library's messages are one line already; escape anyway so that holds for any text.
    std::string line = "error: " + printable(message, /*keep_backslash=*/true) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const usage_error& e) {
        report(e.message);
    } catch (const st::error& e) {
        report(e.message());
    } catch (const std::bad_alloc&) {
        report("out of memory");
    } catch (const std::exception& e) {
        report(e.what());
    }
    return 1;
}
