// safetensors command: diff, what differs between two checkpoints: tensor names, dtypes,
// shapes, values and metadata. Exit 0 when equal, 1 when not, 2 on any error (as diff(1)).
//
//   safetensors diff A B [--atol X] [--rtol Y] [--json | --quiet] [--progress | --no-progress]
//
// A and B are each a .safetensors file, an index or a folder; a checkpoint and a re-sharded
// copy of it compare equal. Tensors are matched by name. Those in both with the same shape
// are compared element by element (compare.hpp: exact by default, NaN equals NaN), in
// several threads, in chunks, so memory stays at a few MiB per thread whatever the size. A
// dtype change is a difference even where the values are equal (the report says so).
//
// Metadata: each side's header metadata is its file's __metadata__, or for a sharded side its
// first shard's (as rewrite copies it); absent and empty are the same. When both sides are
// indexes, the index "metadata" is compared too, without the keys computed from the shards
// (total_size, total_parameters); with one index only, the index metadata is not compared
// (a single file has nowhere to keep it).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "compare.hpp"
#include "jobs.hpp"
#include "output.hpp"

namespace cli {

struct diff_options {
    std::string a;
    std::string b;
    std::string atol;
    std::string rtol;
    bool json = false;
    bool quiet = false;
    bool progress = false;
    bool no_progress = false;
};

namespace diff_detail {

using json = nlohmann::json;

// A tensor in both A and B.
struct common_tensor {
    st::tensor_view a;
    st::tensor_view b;
    bool compared = false;  // same shape: the values were compared
    value_stats values;
    bool changed() const noexcept {
        return a.dtype() != b.dtype() || !same_shape() || (compared && values.mismatched != 0);
    }
    bool same_shape() const noexcept {
        return std::equal(a.shape().begin(), a.shape().end(), b.shape().begin(), b.shape().end());
    }
};

using metadata = std::map<std::string, json>;

struct metadata_diff {
    std::vector<std::pair<std::string, json>> only_in_a, only_in_b;
    std::vector<std::tuple<std::string, json, json>> changed;
    std::size_t size() const noexcept { return only_in_a.size() + only_in_b.size() + changed.size(); }
};

struct report {
    std::vector<std::string> only_in_a, only_in_b;
    std::vector<common_tensor> common;  // by name
    metadata_diff header_metadata;
    std::optional<metadata_diff> index_metadata;  // both sides indexes
    std::size_t changed_count() const {
        return static_cast<std::size_t>(
            std::count_if(common.begin(), common.end(), [](const common_tensor& t) { return t.changed(); }));
    }
    bool equal() const {
        return only_in_a.empty() && only_in_b.empty() && changed_count() == 0 && header_metadata.size() == 0 &&
               (!index_metadata || index_metadata->size() == 0);
    }
};

// "1e-3", "0.5": a finite number >= 0 (strtod's syntax, the whole text).
inline double parse_tolerance(const std::string& text, const char* flag) {
    errno = 0;
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value) || value < 0)
        throw usage_error(std::string(flag) + " needs a finite number >= 0, got " + st::detail::quote(text));
    return value;
}

// Tensors by name; for a sharded side, over all shards.
inline std::vector<st::tensor_view> by_name(const checkpoint& c) {
    const std::vector<checkpoint::entry> entries = c.entries();
    std::vector<st::tensor_view> out;
    out.reserve(entries.size());
    for (const checkpoint::entry& e : entries) out.push_back(e.view);
    std::sort(out.begin(), out.end(),
              [](const st::tensor_view& x, const st::tensor_view& y) { return x.name() < y.name(); });
    return out;
}

inline void match_names(const checkpoint& a, const checkpoint& b, report& r) {
    const std::vector<st::tensor_view> ta = by_name(a), tb = by_name(b);
    r.common.reserve(std::min(ta.size(), tb.size()));
    std::size_t i = 0, j = 0;
    while (i < ta.size() || j < tb.size()) {
        if (j == tb.size() || (i < ta.size() && ta[i].name() < tb[j].name())) {
            r.only_in_a.emplace_back(ta[i++].name());
        } else if (i == ta.size() || tb[j].name() < ta[i].name()) {
            r.only_in_b.emplace_back(tb[j++].name());
        } else {
            r.common.push_back({ta[i++], tb[j++], false, {}});
        }
    }
}

// The header metadata (see the top); values as JSON strings.
inline metadata header_metadata(const checkpoint& c) {
    const st::metadata_map* m = nullptr;
    if (!c.is_sharded()) m = c.single().metadata();
    else if (c.sharded().shard_count() != 0) m = c.sharded().shard(0).metadata();
    metadata out;
    if (m)
        for (const auto& [key, value] : *m) out.emplace(key, json(value));
    return out;
}

// The index's metadata without the keys computed from the shards.
inline metadata index_metadata(const checkpoint& c) {
    metadata out;
    if (const json* m = c.index_metadata())
        for (auto it = m->begin(); it != m->end(); ++it)
            if (it.key() != "total_size" && it.key() != "total_parameters") out.emplace(it.key(), it.value());
    return out;
}

inline metadata_diff compare_metadata(const metadata& a, const metadata& b) {
    metadata_diff d;
    for (const auto& [key, value] : a) {
        const auto other = b.find(key);
        if (other == b.end()) d.only_in_a.emplace_back(key, value);
        else if (other->second != value) d.changed.emplace_back(key, value, other->second);
    }
    for (const auto& [key, value] : b)
        if (a.find(key) == a.end()) d.only_in_b.emplace_back(key, value);
    return d;
}

// Compares the values of every common tensor of the same shape, largest first, in up to 8
// threads. With first_only (--quiet) it stops at the first difference.
inline void compare_common(std::vector<common_tensor>& common, const tolerance& tol, bool first_only,
                           progress_mode mode) {
    std::vector<common_tensor*> work;
    std::uint64_t total = 0;
    for (common_tensor& t : common)
        if (t.same_shape()) {
            t.compared = true;
            work.push_back(&t);
            total += t.a.byte_size() + t.b.byte_size();
        }
    std::stable_sort(work.begin(), work.end(), [](const common_tensor* x, const common_tensor* y) {
        return x->a.byte_size() + x->b.byte_size() > y->a.byte_size() + y->b.byte_size();
    });
    const std::size_t workers =
        std::min<std::size_t>({work.size(), std::max(1u, std::thread::hardware_concurrency()), 8});
    if (workers == 0) return;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> bytes_read{0};
    const auto job = [&](std::size_t i) {
        common_tensor& t = *work[i];
        t.values = compare_tensors(t.a, t.b, tol, bytes_read, stop, first_only);
        if (first_only && t.values.mismatched != 0) stop = true;
    };
    std::function<void()> tick;
    std::uint64_t shown = 0;
    if (wants_progress(mode, total)) {
        progress().start("comparing", total);
        tick = [&] {
            const std::uint64_t now = bytes_read.load();
            progress().advance(now - shown);
            shown = now;
        };
    }
    run_jobs(work.size(), workers, stop, job, tick);
    progress().finish();
}

// A number in the report: "inf" (a string in JSON) when infinite.
inline std::string number_text(double value) {
    if (std::isinf(value)) return "inf";
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}
inline std::string number_json(double value) { return std::isinf(value) ? "\"inf\"" : json(value).dump(); }

// A metadata value: strings quoted and escaped, other (index) values as ASCII JSON.
inline std::string value_text(const json& value) {
    return value.is_string() ? quoted_text(value.get_ref<const std::string&>()) : value.dump(-1, ' ', true);
}
inline void append_json_value(std::string& out, const json& value) {
    if (value.is_string()) append_json_string(out, value.get_ref<const std::string&>());
    else out += value.dump(-1, ' ', true);
}

inline std::string values_text(const value_stats& v) {
    return std::to_string(v.mismatched) + " of " + std::to_string(v.elements) + " elements differ, max abs diff " +
           number_text(v.max_abs) + ", max rel diff " + number_text(v.max_rel);
}

inline void append_metadata_lines(std::string& out, const metadata_diff& d, const std::string& what) {
    for (const auto& [key, value] : d.only_in_a) out += what + " only in A: " + quoted_text(key) + " = " + value_text(value) + "\n";
    for (const auto& [key, value] : d.only_in_b) out += what + " only in B: " + quoted_text(key) + " = " + value_text(value) + "\n";
    for (const auto& [key, a, b] : d.changed)
        out += what + " changed: " + quoted_text(key) + ": " + value_text(a) + " -> " + value_text(b) + "\n";
}

inline std::string plural(std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// One line per difference, then a summary line.
inline std::string text_report(const report& r) {
    std::string out;
    for (const std::string& name : r.only_in_a) out += "only in A: " + printable(name) + "\n";
    for (const std::string& name : r.only_in_b) out += "only in B: " + printable(name) + "\n";
    for (const common_tensor& t : r.common) {
        if (!t.changed()) continue;
        const std::string name = printable(t.a.name());
        if (t.a.dtype() != t.b.dtype()) {
            out += "dtype changed: " + name + ": " + std::string(st::to_string(t.a.dtype())) + " -> " +
                   std::string(st::to_string(t.b.dtype()));
            out += t.compared && t.values.mismatched == 0 ? " (values equal)\n" : "\n";
        }
        if (!t.same_shape())
            out += "shape changed: " + name + ": " + shape_text(t.a.shape()) + " -> " + shape_text(t.b.shape()) + "\n";
        if (t.compared && t.values.mismatched != 0) out += "values differ: " + name + ": " + values_text(t.values) + "\n";
    }
    append_metadata_lines(out, r.header_metadata, "metadata");
    if (r.index_metadata) append_metadata_lines(out, *r.index_metadata, "index metadata");
    if (r.equal()) return out + "equal: " + plural(r.common.size(), "tensor") + "\n";
    const std::size_t metadata_count = r.header_metadata.size() + (r.index_metadata ? r.index_metadata->size() : 0);
    return out + "different: " + std::to_string(r.only_in_a.size()) + " only in A, " + std::to_string(r.only_in_b.size()) +
           " only in B, " + std::to_string(r.changed_count()) + " of " + std::to_string(r.common.size()) +
           " in both changed, " + plural(metadata_count, "metadata difference") + "\n";
}

inline void append_name_list(std::string& out, const std::vector<std::string>& names) {
    out += "[";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ", ";
        append_json_string(out, names[i]);
    }
    out += "]";
}

inline void append_metadata_json(std::string& out, const metadata_diff& d) {
    const auto object = [&](const std::vector<std::pair<std::string, json>>& items) {
        out += "{";
        for (std::size_t i = 0; i < items.size(); ++i) {
            out += i ? ", " : "";
            append_json_string(out, items[i].first);
            out += ": ";
            append_json_value(out, items[i].second);
        }
        out += "}";
    };
    out += "{\"only_in_a\": ";
    object(d.only_in_a);
    out += ", \"only_in_b\": ";
    object(d.only_in_b);
    out += ", \"changed\": {";
    for (std::size_t i = 0; i < d.changed.size(); ++i) {
        out += i ? ", " : "";
        append_json_string(out, std::get<0>(d.changed[i]));
        out += ": [";
        append_json_value(out, std::get<1>(d.changed[i]));
        out += ", ";
        append_json_value(out, std::get<2>(d.changed[i]));
        out += "]";
    }
    out += "}}";
}

// What changed in one tensor, as a JSON object.
inline std::string change_json(const common_tensor& t) {
    std::string out = "{";
    const char* separator = "";
    if (t.a.dtype() != t.b.dtype()) {
        out += std::string("\"dtype\": [\"") + std::string(st::to_string(t.a.dtype())) + "\", \"" +
               std::string(st::to_string(t.b.dtype())) + "\"]";
        separator = ", ";
    }
    if (!t.same_shape()) {
        out += separator + std::string("\"shape\": [") + shape_text(t.a.shape()) + ", " + shape_text(t.b.shape()) + "]";
    } else {
        const value_stats& v = t.values;
        out += separator + std::string("\"values_equal\": ") + (v.mismatched == 0 ? "true" : "false") +
               ", \"elements\": " + std::to_string(v.elements) + ", \"mismatched\": " + std::to_string(v.mismatched) +
               ", \"max_abs_diff\": " + number_json(v.max_abs) + ", \"max_rel_diff\": " + number_json(v.max_rel);
    }
    return out + "}";
}

// Built by hand, as inspect's (a checkpoint can hold a million tensors).
inline std::string json_report(const report& r) {
    std::string out = std::string("{\n  \"equal\": ") + (r.equal() ? "true" : "false") + ",\n  \"only_in_a\": ";
    append_name_list(out, r.only_in_a);
    out += ",\n  \"only_in_b\": ";
    append_name_list(out, r.only_in_b);
    out += ",\n  \"changed\": {";
    bool first = true;
    for (const common_tensor& t : r.common) {
        if (!t.changed()) continue;
        out += first ? "\n    " : ",\n    ";
        first = false;
        append_json_string(out, t.a.name());
        out += ": " + change_json(t);
    }
    out += first ? "}" : "\n  }";
    out += ",\n  \"metadata\": ";
    append_metadata_json(out, r.header_metadata);
    out += ",\n  \"index_metadata\": ";
    if (r.index_metadata) append_metadata_json(out, *r.index_metadata);
    else out += "null";
    return out + "\n}\n";
}

inline int run_diff(const CLI::App& app, const diff_options& opts) {
    if (opts.json && opts.quiet) throw usage_error("--json and --quiet cannot be used together");
    if (opts.progress && opts.no_progress) throw usage_error("--progress and --no-progress cannot be used together");
    tolerance tol;
    if (app.count("--atol")) tol.atol = parse_tolerance(opts.atol, "--atol");
    if (app.count("--rtol")) tol.rtol = parse_tolerance(opts.rtol, "--rtol");
    const checkpoint a(opts.a), b(opts.b);  // sharded: checked against the index first

    report r;
    match_names(a, b, r);
    r.header_metadata = compare_metadata(header_metadata(a), header_metadata(b));
    if (a.is_index() && b.is_index()) r.index_metadata = compare_metadata(index_metadata(a), index_metadata(b));
    // --quiet needs only the verdict: a difference found so far makes reading data pointless.
    const bool known_different = !r.equal();
    if (!(opts.quiet && known_different)) {
        const progress_mode mode = opts.progress ? progress_mode::on : opts.no_progress ? progress_mode::off
                                                                                         : progress_mode::automatic;
        compare_common(r.common, tol, opts.quiet, mode);
    }
    const bool equal = r.equal();
    if (!opts.quiet) write_stdout(opts.json ? json_report(r) : text_report(r));
    return equal ? exit_ok : exit_error;
}

} // namespace diff_detail

inline const char diff_description[] =
    "Compares two checkpoints (each a .safetensors file, an index or a folder; a sharded one is first\n"
    "checked against its index) and reports, one line each: tensors only in A or only in B, dtype and\n"
    "shape changes, and for tensors in both with the same shape whether their values are equal, else\n"
    "how many elements differ and the largest absolute and relative (|a-b|/|b|) difference; then\n"
    "metadata keys only in A or B or with changed values, and a summary line. Values are compared\n"
    "after decoding both to float64, so different dtypes compare by value; NaN equals NaN, -0 equals\n"
    "0. Equal means exactly equal unless --atol or --rtol is given: then |a-b| <= atol + rtol*|b|.\n"
    "A sharded side's metadata is its first shard's; the index metadata is compared when both sides are\n"
    "indexes, without total_size and total_parameters. Exit status: 0 equal, 1 different, 2 error.";

inline command add_diff(CLI::App& root) {
    auto opts = std::make_shared<diff_options>();
    CLI::App* app = root.add_subcommand("diff", "Compare two checkpoints: names, dtypes, shapes, values, metadata");
    app->description(diff_description);
    app->add_option("--atol", opts->atol, "absolute tolerance: values equal when |a-b| <= atol + rtol*|b| "
                                          "(default 0)")
        ->type_name("X");
    app->add_option("--rtol", opts->rtol, "relative tolerance, against B's value (default 0)")->type_name("Y");
    app->add_flag("--json", opts->json,
                  "print one object: {\"equal\", \"only_in_a\", \"only_in_b\", \"changed\": {NAME: {...}}, "
                  "\"metadata\", \"index_metadata\"}");
    app->add_flag("-q,--quiet", opts->quiet, "print nothing; the exit status says it (stops at the first difference)");
    app->add_flag("--progress", opts->progress, "show a progress line on standard error (by default only on a "
                                                "terminal and for at least 64 MiB to compare)");
    app->add_flag("--no-progress", opts->no_progress, "never show it");
    app->add_option("A", opts->a, "safetensors file, index or checkpoint folder")->required();
    app->add_option("B", opts->b, "the one to compare it with")->required();
    return {app, [app, opts] { return diff_detail::run_diff(*app, *opts); }};
}

} // namespace cli
