// safetensors command: stats, per tensor the minimum, maximum, mean, standard deviation
// (ddof 0) and largest magnitude of the finite values, and the counts of NaN, infinite and
// zero elements.
//
//   safetensors stats FILE... [--filter REGEX] [--json] [--threads N] [--progress | --no-progress]
//
// Every tensor is read once, in chunks, decoded to float64 (decode.hpp): integers and BOOL (0
// or 1) as numbers, C64 only counted (NaN, Inf, zero by element; its statistics are null).
// Tensors are spread over threads, each read by one thread; rows come out in file order.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "decode.hpp"
#include "jobs.hpp"
#include "numbers.hpp"
#include "output.hpp"

namespace cli {

namespace stats_detail {

// The moments of the finite values so far, merged chunk by chunk (Chan, Golub and LeVeque):
// a chunk's mean and squared deviations come from the chunk in memory (two passes over it,
// still one over the tensor), so the result stays close to a float64 two-pass computation.
struct moments {
    std::uint64_t n = 0;
    double mean = 0;
    double m2 = 0;        // sum of squared deviations from the mean, times scale^2 once scaled
    bool scaled = false;  // set when they overflow (F64 values beyond 1e154)

    static constexpr double scale = 0x1p-540;  // keeps (2 * DBL_MAX * scale)^2 * 2^64 finite

    void add(const std::vector<double>& x) {
        if (x.empty()) return;
        const auto k = static_cast<double>(x.size());
        double chunk_mean = compensated_sum(x, 1.0) / k;
        if (!std::isfinite(chunk_mean)) chunk_mean = compensated_sum(x, 0x1p-64) / k * 0x1p64;  // the sum overflowed
        const double a = static_cast<double>(n), total = a + k;
        if (!scaled) {
            const double merged = m2 + squared_deviations(x, chunk_mean, mean, a, 1.0);
            if (std::isfinite(merged)) {
                m2 = merged;
            } else {
                m2 = m2 * scale * scale;  // its small terms underflow, beside the huge ones to come
                scaled = true;
            }
        }
        if (scaled) m2 += squared_deviations(x, chunk_mean, mean, a, scale);
        const double delta = chunk_mean - mean;
        mean = std::isfinite(delta) ? mean + delta * (k / total) : mean * (a / total) + chunk_mean * (k / total);
        n += x.size();
    }

    // The standard deviation (ddof 0); unscaled after the square root, where it cannot overflow.
    double std_dev() const {
        const double root = std::sqrt(m2 / static_cast<double>(n));
        return scaled ? root / scale : root;
    }

private:
    // Neumaier's compensated sum of x * s.
    static double compensated_sum(const std::vector<double>& x, double s) {
        double sum = 0, c = 0;
        for (double v : x) {
            const double y = v * s, t = sum + y;
            c += std::fabs(sum) >= std::fabs(y) ? (sum - t) + y : (y - t) + sum;
            sum = t;
        }
        return sum + c;
    }
    // (x - chunk_mean)^2 summed over the chunk, plus the term that moves the a values seen so
    // far from their mean to the merged one; everything times s^2.
    static double squared_deviations(const std::vector<double>& x, double chunk_mean, double mean, double a, double s) {
        double sum = 0;
        for (double v : x) {
            const double d = v * s - chunk_mean * s;
            sum += d * d;
        }
        if (a == 0) return sum;
        const double delta = chunk_mean * s - mean * s;
        const auto k = static_cast<double>(x.size());
        return sum + delta * delta * (a / (a + k)) * k;
    }
};

struct tensor_stats {
    bool has_moments = false;  // false for C64, and when no value is finite
    double min = 0, max = 0, mean = 0, std = 0, abs_max = 0;
    std::uint64_t nan = 0, inf = 0, zeros = 0;
};

// One pass over a tensor; progress(bytes) after each chunk.
template <class Progress>
tensor_stats compute(const st::tensor_view& view, Progress&& progress) {
    tensor_stats s;
    moments m;
    double low = HUGE_VAL, high = -HUGE_VAL, magnitude = 0;
    const bool complex = kind_of(view.dtype()) == value_kind::complex;
    const std::uint64_t bits = st::bit_size(view.dtype());
    std::vector<double> finite;
    for_each_chunk(view, [&](const double* values, std::size_t count) {
        progress(count * bits / 8);  // chunks are multiples of 8 elements: whole bytes
        if (complex) {  // an element is NaN if a part is, else infinite if a part is
            for (std::size_t i = 0; i < count; ++i) {
                const double re = values[2 * i], im = values[2 * i + 1];
                if (std::isnan(re) || std::isnan(im)) ++s.nan;
                else if (std::isinf(re) || std::isinf(im)) ++s.inf;
                else if (re == 0 && im == 0) ++s.zeros;
            }
            return;
        }
        finite.clear();
        for (std::size_t i = 0; i < count; ++i) {
            const double v = values[i];
            if (std::isnan(v)) ++s.nan;
            else if (std::isinf(v)) ++s.inf;
            else {
                if (v == 0) ++s.zeros;
                low = std::min(low, v);
                high = std::max(high, v);
                magnitude = std::max(magnitude, std::fabs(v));
                finite.push_back(v);
            }
        }
        m.add(finite);
    });
    if (m.n != 0) {
        s.has_moments = true;
        s.min = low;
        s.max = high;
        s.abs_max = magnitude;
        s.mean = m.mean;
        s.std = m.std_dev();
    }
    return s;
}

// One tensor to compute: which input it belongs to, and its view.
struct job {
    std::size_t input;
    st::tensor_view view;
};

// Computes every job on up to threads threads (each tensor on one), results in job order. A
// progress line, if shown, is advanced from this thread only. The first failing job (in job
// order) rethrows its error: jobs are taken in order, so every earlier one was finished.
inline std::vector<tensor_stats> compute_all(const std::vector<job>& jobs, std::size_t threads, bool show_progress) {
    std::vector<tensor_stats> results(jobs.size());
    std::vector<std::exception_ptr> errors(jobs.size());
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done{0};
    std::uint64_t shown = 0;
    const auto tick = [&] {
        if (!show_progress) return;
        const std::uint64_t now = done.load();
        progress().advance(now - shown);
        shown = now;
    };
    const auto one = [&](std::size_t i) {
        try {
            results[i] = compute(jobs[i].view, [&done](std::uint64_t bytes) { done += bytes; });
        } catch (...) {
            errors[i] = std::current_exception();
            stop = true;
        }
    };
    run_jobs(jobs.size(), std::max<std::size_t>(1, std::min(threads, jobs.size())), stop, one, tick);
    // The first failure in file order, whatever the threads did first.
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
    return results;
}

// ---- Output ---------------------------------------------------------------------------------

inline std::string table_number(double x) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", x);
    return text;
}

struct input_rows {
    std::string title;  // "file: PATH" or "index: PATH"
    std::vector<std::pair<const job*, const tensor_stats*>> rows;
};

// The table, appended to buffer (written out whenever it holds a piece). A row's cells are
// made twice, for the column widths and for its line, rather than kept for every tensor.
inline void write_table_report(const input_rows& input, stdout_buffer& buffer) {
    using cells = std::string[11];
    static const cells headings = {"NAME", "DTYPE", "SHAPE", "MIN", "MAX", "MEAN",
                                   "STD",  "ABS_MAX", "NAN", "INF", "ZEROS"};
    const auto fill = [](const std::pair<const job*, const tensor_stats*>& row, cells& out) {
        const job* j = row.first;
        const tensor_stats* s = row.second;
        const auto number = [s](double x) { return s->has_moments ? table_number(x) : std::string("-"); };
        out[0] = printable(j->view.name());
        out[1] = st::to_string(j->view.dtype());
        out[2] = shape_text(j->view.shape());
        out[3] = number(s->min);
        out[4] = number(s->max);
        out[5] = number(s->mean);
        out[6] = number(s->std);
        out[7] = number(s->abs_max);
        out[8] = std::to_string(s->nan);
        out[9] = std::to_string(s->inf);
        out[10] = std::to_string(s->zeros);
    };
    std::size_t width[11] = {};
    for (std::size_t c = 0; c < 11; ++c) width[c] = display_width(headings[c]);
    cells row;
    for (const auto& r : input.rows) {
        fill(r, row);
        for (std::size_t c = 0; c < 11; ++c) width[c] = std::max(width[c], display_width(row[c]));
    }
    std::string& out = buffer.text();
    out += input.title + "\n\n";
    if (input.rows.empty()) {
        out += "no tensors\n";
        return;
    }
    const auto line = [&](const cells& values) {
        for (std::size_t c = 0; c < 11; ++c) {
            const std::string pad(width[c] - display_width(values[c]), ' ');
            if (c) out += "  ";
            if (c < 3) out += values[c] + pad;  // text left-aligned
            else out += pad + values[c];        // numbers right-aligned, ZEROS last: no trailing spaces
        }
        out += '\n';
        buffer.spill();
    };
    line(headings);
    for (const auto& r : input.rows) {
        fill(r, row);
        line(row);
    }
}

inline void append_stat(std::string& out, const char* key, bool present, double x) {
    out += ", \"";
    out += key;
    out += "\": ";
    if (present) append_json_number(out, x);
    else out += "null";
}

// {NAME: {"min", "max", "mean", "std", "abs_max", "nan", "inf", "zeros"}}, indented by indent,
// appended to buffer.
inline void write_json_report(const input_rows& input, const std::string& indent, stdout_buffer& buffer) {
    std::string& out = buffer.text();
    if (input.rows.empty()) {
        out += "{}";
        return;
    }
    out += "{\n";
    for (std::size_t i = 0; i < input.rows.size(); ++i) {
        const job& j = *input.rows[i].first;
        const tensor_stats& s = *input.rows[i].second;
        out += indent + "  ";
        append_json_string(out, j.view.name());
        out += ": {\"min\": ";
        if (s.has_moments) append_json_number(out, s.min);
        else out += "null";
        append_stat(out, "max", s.has_moments, s.max);
        append_stat(out, "mean", s.has_moments, s.mean);
        append_stat(out, "std", s.has_moments, s.std);
        append_stat(out, "abs_max", s.has_moments, s.abs_max);
        out += ", \"nan\": " + std::to_string(s.nan) + ", \"inf\": " + std::to_string(s.inf) +
               ", \"zeros\": " + std::to_string(s.zeros) + "}";
        out += i + 1 < input.rows.size() ? ",\n" : "\n";
        buffer.spill();
    }
    out += indent + "}";
}

} // namespace stats_detail

struct stats_options {
    std::vector<std::string> files;
    std::string filter;
    bool json = false;
    std::string threads;
    bool progress = false;
    bool no_progress = false;
};

inline int run_stats(const CLI::App& app, const stats_options& opts) {
    using namespace stats_detail;
    if (opts.progress && opts.no_progress) throw usage_error("--progress and --no-progress cannot be used together");
    std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    if (app.count("--threads")) {
        const auto n = parse_whole_number(opts.threads);
        if (!n || *n == 0 || *n > 1024)
            throw usage_error("--threads needs a whole number from 1 to 1024, got " + st::detail::quote(opts.threads));
        threads = static_cast<std::size_t>(*n);
    }
    const name_filter filter(app.count("--filter") ? std::optional<std::string>(opts.filter) : std::nullopt,
                             std::nullopt);

    // Every input is opened (and a sharded one checked) before any tensor is read.
    std::vector<checkpoint> inputs;
    for (const std::string& path : opts.files) inputs.emplace_back(path);
    std::vector<job> jobs;
    std::uint64_t total_bytes = 0;
    std::size_t tensors = 0;
    for (const checkpoint& input : inputs) tensors += input.size();
    jobs.reserve(tensors);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        for (const checkpoint::entry& e : inputs[i].entries())
            if (filter.keeps(e.view.name())) {
                jobs.push_back({i, e.view});
                total_bytes += e.view.byte_size();
            }

    const progress_mode mode = opts.progress ? progress_mode::on : opts.no_progress ? progress_mode::off
                                                                                     : progress_mode::automatic;
    const bool show_progress = wants_progress(mode, total_bytes);
    if (show_progress) progress().start("reading", total_bytes);
    const std::vector<tensor_stats> results = compute_all(jobs, threads, show_progress);
    progress().finish();

    std::vector<input_rows> reports(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const checkpoint& c = inputs[i];
        reports[i].title = c.is_index() ? "index: " + printable(c.index_shown()) : "file: " + printable(c.shown());
    }
    for (std::size_t k = 0; k < jobs.size(); ++k) reports[jobs[k].input].rows.emplace_back(&jobs[k], &results[k]);

    // Every tensor was read: nothing can fail now but the writes.
    write_reports(
        reports.size(), opts.json, [&](std::size_t i) { return inputs[i].shown(); },
        [&](std::size_t i, stdout_buffer& out) { write_table_report(reports[i], out); },
        [&](std::size_t i, const std::string& indent, stdout_buffer& out) { write_json_report(reports[i], indent, out); });
    return exit_ok;
}

inline const char stats_description[] =
    "Reads every tensor of each FILE (a .safetensors file, an index or a checkpoint folder) once and\n"
    "shows per tensor the minimum, maximum, mean, standard deviation (ddof 0) and largest magnitude\n"
    "of its finite values, and how many elements are NaN, infinite and zero. Integers count as\n"
    "numbers, BOOL as 0 and 1; complex tensors only get the counts (an element is NaN or infinite\n"
    "when a part is, zero when both are). Statistics of a tensor without finite values are \"-\"\n"
    "(null in JSON). Tensors are read in parallel, each by one thread; rows keep the file order.";

inline command add_stats(CLI::App& root) {
    auto opts = std::make_shared<stats_options>();
    CLI::App* app = root.add_subcommand("stats", "Show min, max, mean, std, abs-max and NaN/Inf/zero counts");
    app->description(stats_description);
    app->add_option("--filter", opts->filter,
                    "only tensors whose name contains a match for REGEX (ECMAScript; anchor with ^ and $)")
        ->type_name("REGEX");
    app->add_flag("--json", opts->json,
                  "print {NAME: {\"min\", \"max\", \"mean\", \"std\", \"abs_max\", \"nan\", \"inf\", \"zeros\"}} "
                  "(null where a tensor has no finite value); several FILEs: one object mapping each FILE to "
                  "its object");
    app->add_option("--threads", opts->threads, "read N tensors at a time (default: the number of cores)")
        ->type_name("N");
    app->add_flag("--progress", opts->progress, "show a progress line on standard error (by default only on a "
                                                "terminal and for at least 64 MiB of tensors)");
    app->add_flag("--no-progress", opts->no_progress, "never show it");
    app->add_option("FILE", opts->files, "safetensors file, index or checkpoint folder")->required();
    return {app, [app, opts] { return run_stats(*app, *opts); }};
}

} // namespace cli
