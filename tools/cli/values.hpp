// safetensors command: values, tensors' elements as NumPy prints an array, or as JSON.
//
//   safetensors values FILE                       every tensor, each after "NAME: DTYPE [shape]"
//   safetensors values FILE NAME... [--slice SPEC] [--precision P] [--threshold N] [--edgeitems N]
//   safetensors values --json FILE [NAME...]      {NAME: nested arrays of exact values}
//
// The text is np.array2string(a, separator=", ") under NumPy's default print options
// (precision 8, threshold 1000, edgeitems 3, linewidth 75): nested brackets, lines wrapped at
// 75 columns, "..." for the middle of long axes once a tensor has more elements than the
// threshold, and one format for every float of a tensor: positional with trailing zeros
// trimmed, or scientific when the magnitudes span more than 1e3, reach 1e8 or go below 1e-4.
// A float shows the fewest digits that identify it (within float16 for F16, as NumPy prints
// float16, float64 for F64, else float32), at most P after the point, and every digit before
// it. Complex elements are "(re+imj)", right-aligned.
//
// JSON holds every element exactly: floats as the shortest text that reads back as the same
// double, "nan", "inf" and "-inf" as strings, integers (I64 and U64 too) as exact integers,
// BOOL as 0 and 1, complex as [re, im]. Output is built in memory and written once, so on an
// error standard output stays empty.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "decode.hpp"
#include "numbers.hpp"
#include "output.hpp"

namespace cli {

namespace values_detail {

// ---- One float ------------------------------------------------------------------------------

// A float dtype's precision: significand bits (with the implicit one) and the exponent of its
// smallest normal value. A decimal identifies a value when it rounds back to it in this format.
struct float_format {
    int digits;
    int min_exponent;
};

// F16 keeps its own precision, as NumPy prints float16; BF16 and the 8-, 6- and 4-bit floats
// show their exact float32 value (as torch and ml_dtypes print them: 0.25 in F8_E8M0, whose
// single significand bit would make "0.2" enough to identify it).
inline float_format format_of(st::dtype t) noexcept {
    switch (t) {
        case st::dtype::F64: return {53, -1022};
        case st::dtype::F16: return {11, -14};
        default: return {24, -126};  // float32, and what is exact in it
    }
}

// Whether parsed, rounded to the nearest value of format f, is x.
inline bool reads_back(double parsed, double x, float_format f) {
    if (f.digits >= 53 || parsed == 0 || !std::isfinite(parsed)) return parsed == x;
    int e = 0;
    (void)std::frexp(parsed, &e);  // parsed = m * 2^e with 0.5 <= |m| < 1
    const double quantum = std::ldexp(1.0, std::max(e - 1, f.min_exponent) - f.digits + 1);
    return std::nearbyint(parsed / quantum) * quantum == x;  // exact: a power-of-two scale
}

// A finite value as d.ddd x 10^exponent: its sign, digits (no trailing zeros but one "0" for
// zero) and exponent.
struct decimal {
    bool negative = false;
    std::string digits;
    int exponent = 0;
};

// From "%.*e" text: [-]d[.ddd]e(+|-)XX.
inline decimal parse_scientific(const std::string& text) {
    decimal d;
    std::size_t i = 0;
    if (text[i] == '-') {
        d.negative = true;
        ++i;
    }
    for (; i < text.size() && text[i] != 'e'; ++i)
        if (text[i] != '.') d.digits.push_back(text[i]);
    d.exponent = std::atoi(text.c_str() + i + 1);
    while (d.digits.size() > 1 && d.digits.back() == '0') d.digits.pop_back();
    return d;
}

// The text of x in NumPy's parts: integer part with its sign, fraction, and for scientific
// notation the exponent with its sign ("-05"); at most precision digits after the point.
struct number_parts {
    std::string integer;
    std::string fraction;
    std::string exponent;
};

// "+05", "-12", "+308": sign and at least two digits.
inline std::string exponent_text(int exponent) {
    return (exponent < 0 ? "-" : "+") + std::string(std::abs(exponent) < 10 ? "0" : "") + std::to_string(std::abs(exponent));
}

inline number_parts parts_of(double x, float_format f, int precision, bool scientific, bool plus) {
    const int shortest = shortest_digits(x, [&](double parsed) { return reads_back(parsed, x, f); });
    decimal d = parse_scientific(scientific_text(x, shortest));
    if (x == 0) d.digits = "0", d.exponent = 0;
    number_parts p;
    const std::string sign = std::signbit(x) ? "-" : plus ? "+" : "";
    if (scientific) {
        if (static_cast<int>(d.digits.size()) - 1 > precision) {
            d = parse_scientific(scientific_text(x, precision + 1));  // rounded to precision
        }
        p.integer = sign + d.digits.substr(0, 1);
        p.fraction = d.digits.substr(1);
        p.exponent = exponent_text(d.exponent);
        return p;
    }
    const int fraction_digits = std::max(0, static_cast<int>(d.digits.size()) - 1 - d.exponent);
    if (fraction_digits > precision) {
        // Positional is only chosen below 1e8, and precision is at most 30: 64 bytes suffice.
        char text[64];
        std::snprintf(text, sizeof text, "%.*f", precision, std::fabs(x));
        const std::string s = text;
        const std::size_t point = s.find('.');
        p.integer = sign + s.substr(0, point);
        p.fraction = point == std::string::npos ? std::string() : s.substr(point + 1);
        while (!p.fraction.empty() && p.fraction.back() == '0') p.fraction.pop_back();
        return p;
    }
    if (d.exponent >= 0) {
        const auto whole = static_cast<std::size_t>(d.exponent) + 1;
        p.integer = d.digits.substr(0, whole);
        if (p.integer.size() < whole) {
            // NumPy (min_digits 0) prints every digit before the point: 36544 in F16, whose
            // shortest form is 3654e1. Such a value is a whole number, so "%.0f" is exact.
            char text[320];
            std::snprintf(text, sizeof text, "%.0f", std::fabs(x));
            p.integer = text;
        }
        if (d.digits.size() > whole) p.fraction = d.digits.substr(whole);
    } else {
        p.integer = "0";
        p.fraction = std::string(static_cast<std::size_t>(-d.exponent - 1), '0') + d.digits;
    }
    p.integer = sign + p.integer;
    return p;
}

// NumPy's FloatingFormat in its default "maxprec" mode: one notation and one width for all
// the values shown of a tensor (for complex, of its real or of its imaginary parts).
class float_formatter {
public:
    float_formatter(const std::vector<double>& values, float_format format, int precision, bool plus)
        : format_(format), precision_(precision), plus_(plus) {
        double low = HUGE_VAL, high = 0;
        bool any_finite = false, any_other = false, negative_inf = false;
        for (double x : values) {
            if (!std::isfinite(x)) {
                any_other = true;
                negative_inf = negative_inf || (std::isinf(x) && x < 0);
                continue;
            }
            any_finite = true;
            const double a = std::fabs(x);
            if (a != 0) {
                low = std::min(low, a);
                high = std::max(high, a);
            }
        }
        scientific_ = high > 0 && (high >= 1e8 || low < 1e-4 || high / low > 1e3);
        long pad_right = 0;
        if (any_finite) {
            for (double x : values) {
                if (!std::isfinite(x)) continue;
                const number_parts p = parts_of(x, format_, precision_, scientific_, plus_);
                pad_left_ = std::max(pad_left_, static_cast<long>(p.integer.size()));
                if (scientific_) {
                    fraction_digits_ = std::max(fraction_digits_, p.fraction.size());
                    exponent_digits_ = std::max(exponent_digits_, p.exponent.size() - 1);
                } else {
                    pad_right = std::max(pad_right, static_cast<long>(p.fraction.size()));
                }
            }
            if (scientific_) pad_right = static_cast<long>(exponent_digits_ + 2 + fraction_digits_);
        }
        if (any_other) {  // room for "nan", "inf", "-inf"
            const long offset = pad_right + 1;
            pad_left_ = std::max({pad_left_, 3 - offset, 3 + ((plus_ || negative_inf) ? 1 : 0) - offset});
        }
        pad_right_ = pad_right;
    }

    std::string operator()(double x) const {
        if (!std::isfinite(x)) {
            const std::string text = std::isnan(x) ? (plus_ ? "+nan" : "nan") : x < 0 ? "-inf" : plus_ ? "+inf" : "inf";
            return spaces(pad_left_ + pad_right_ + 1 - static_cast<long>(text.size())) + text;
        }
        number_parts p = parts_of(x, format_, precision_, scientific_, plus_);
        if (scientific_ && p.fraction.size() < fraction_digits_) {
            // As NumPy's min_digits: more of the exact value's digits, rounded, not zeros.
            const decimal d = parse_scientific(scientific_text(x, static_cast<int>(fraction_digits_) + 1));
            p.integer = p.integer.substr(0, p.integer.size() - 1) + d.digits[0];  // keeps the sign
            p.fraction = d.digits.substr(1);
            p.fraction.append(fraction_digits_ - p.fraction.size(), '0');  // the exact value ended
            p.exponent = exponent_text(d.exponent);
        }
        const std::string out = spaces(pad_left_ - static_cast<long>(p.integer.size())) + p.integer + "." + p.fraction;
        if (!scientific_) return out + spaces(pad_right_ - static_cast<long>(p.fraction.size()));
        return out + "e" + p.exponent[0] + std::string(exponent_digits_ + 1 - p.exponent.size(), '0') +
               p.exponent.substr(1);
    }

private:
    static std::string spaces(long n) { return std::string(n > 0 ? static_cast<std::size_t>(n) : 0, ' '); }

    float_format format_;
    int precision_;
    bool plus_;
    bool scientific_ = false;
    long pad_left_ = 0;
    long pad_right_ = 0;
    std::size_t fraction_digits_ = 0;  // scientific: digits after the point, the same for all
    std::size_t exponent_digits_ = 0;  // scientific: at least 2, the same for all
};

// ---- Reading elements -----------------------------------------------------------------------

constexpr std::size_t chunk_elements = std::size_t(1) << 16;

// Elements [first, first + count) of source decoded to doubles (values_per_element each),
// appended to out. Reads from a multiple of 8 elements, so sub-byte packings start on a byte.
template <class Source>
void decode_range(const Source& source, std::uint64_t first, std::uint64_t count, std::vector<double>& out) {
    const st::dtype t = source.dtype();
    const std::uint64_t bits = st::bit_size(t);
    const std::uint64_t total = source.byte_size() * 8 / bits;
    const std::size_t per = values_per_element(t);
    std::vector<std::byte> raw;
    std::vector<double> values;
    std::vector<float> scratch;
    while (count != 0) {
        const std::uint64_t begin = first / 8 * 8;
        const std::uint64_t end = std::min(total, (first + std::min<std::uint64_t>(count, chunk_elements) + 7) / 8 * 8);
        const auto n = static_cast<std::size_t>(end - begin);
        raw.resize(static_cast<std::size_t>(end * bits / 8 - begin * bits / 8));
        source.read_bytes(begin * bits / 8, raw.data(), raw.size());
        values.resize(n * per);
        decode(t, raw.data(), n, values.data(), scratch);
        const std::uint64_t take = std::min(count, end - first);
        const auto skip = static_cast<std::size_t>(first - begin) * per;
        out.insert(out.end(), values.begin() + static_cast<std::ptrdiff_t>(skip),
                   values.begin() + static_cast<std::ptrdiff_t>(skip + static_cast<std::size_t>(take) * per));
        first += take;
        count -= take;
    }
}

template <class T>
std::string integer_text(const std::byte* bytes) {
    T v;
    std::memcpy(&v, bytes, sizeof v);
    return std::to_string(v);
}

// One integer element as exact decimal text (I64 and U64 without a detour through double).
inline std::string integer_text(st::dtype t, const std::byte* bytes) {
    switch (t) {
        case st::dtype::U8: return integer_text<std::uint8_t>(bytes);
        case st::dtype::I8: return integer_text<std::int8_t>(bytes);
        case st::dtype::U16: return integer_text<std::uint16_t>(bytes);
        case st::dtype::I16: return integer_text<std::int16_t>(bytes);
        case st::dtype::U32: return integer_text<std::uint32_t>(bytes);
        case st::dtype::I32: return integer_text<std::int32_t>(bytes);
        case st::dtype::U64: return integer_text<std::uint64_t>(bytes);
        default: return integer_text<std::int64_t>(bytes);  // I64
    }
}

// Calls sink(text) for elements [first, first + count) of an integer tensor, in order.
template <class Source, class Sink>
void for_each_integer(const Source& source, std::uint64_t first, std::uint64_t count, Sink&& sink) {
    const st::dtype t = source.dtype();
    const std::size_t size = st::bit_size(t) / 8;
    std::vector<std::byte> raw;
    while (count != 0) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(count, chunk_elements));
        raw.resize(n * size);
        source.read_bytes(first * size, raw.data(), raw.size());
        for (std::size_t i = 0; i < n; ++i) sink(integer_text(t, raw.data() + i * size));
        first += n;
        count -= n;
    }
}

// ---- Text -----------------------------------------------------------------------------------

struct print_options {
    int precision = 8;
    std::uint64_t threshold = 1000;
    std::uint64_t edgeitems = 3;
};

inline std::uint64_t element_count(const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) n *= d;  // the library checked the product at open
    return n;
}

// Whether an axis of this length shows only its first and last edge items.
inline bool summarised(std::uint64_t length, std::uint64_t edge) { return edge < length && length - edge > edge; }

// The elements shown, as runs {first, count} of row-major indices in order: every element, or
// when summarising, those whose index along each long axis is among the first or last edge.
inline std::vector<std::pair<std::uint64_t, std::uint64_t>> shown_runs(const std::vector<std::uint64_t>& shape,
                                                                        bool summarise, std::uint64_t edge) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
    const std::uint64_t total = element_count(shape);
    if (total == 0) return runs;
    if (!summarise || shape.empty()) return {{0, total}};
    const auto add = [&runs](std::uint64_t first, std::uint64_t count) {
        if (!runs.empty() && runs.back().first + runs.back().second == first) runs.back().second += count;
        else runs.emplace_back(first, count);
    };
    const std::size_t outer = shape.size() - 1;
    std::vector<std::vector<std::uint64_t>> shown(outer);  // the indices shown along each outer axis
    std::vector<std::uint64_t> stride(outer);
    std::uint64_t s = shape.back();
    for (std::size_t a = outer; a-- > 0;) {
        stride[a] = s;
        s *= shape[a];
        for (std::uint64_t i = 0; i < shape[a]; ++i) {
            if (summarised(shape[a], edge) && i == edge) i = shape[a] - edge;
            shown[a].push_back(i);
        }
    }
    const std::uint64_t last = shape.back();
    std::vector<std::size_t> at(outer, 0);
    for (;;) {
        std::uint64_t base = 0;
        for (std::size_t a = 0; a < outer; ++a) base += shown[a][at[a]] * stride[a];
        if (summarised(last, edge)) {
            add(base, edge);
            add(base + last - edge, edge);
        } else {
            add(base, last);
        }
        std::size_t a = outer;
        while (a > 0 && ++at[a - 1] == shown[a - 1].size()) at[--a] = 0;
        if (a == 0) break;
    }
    return runs;
}

// NumPy's _formatArray: the shown elements' texts in nested brackets, rows wrapped to the
// line width with a hanging indent, "..." where a long axis is summarised.
class array_printer {
public:
    array_printer(const std::vector<std::uint64_t>& shape, const std::vector<std::string>& words, bool summarise,
                  std::uint64_t edge)
        : shape_(shape), words_(words), summarise_(summarise), edge_(edge) {}

    std::string print() { return recurse(0, " ", 75); }

private:
    std::string recurse(std::size_t axis, const std::string& hanging, long width) {
        if (axis == shape_.size()) return words_[next_++];
        const std::string next_hanging = hanging + " ";
        const long next_width = width - 1;
        const std::uint64_t length = shape_[axis];
        const bool summary = summarise_ && summarised(length, edge_);
        const std::uint64_t leading = summary ? edge_ : 0;
        const std::uint64_t trailing = summary ? edge_ : length;
        std::string s;
        if (axis + 1 == shape_.size()) {
            const long element_width = width - 1;  // room for "," or "]"
            std::string line = hanging;
            const auto extend = [&](const std::string& word) {
                const bool wrap = static_cast<long>(line.size() + word.size()) > element_width &&
                                  line.size() > hanging.size();
                if (wrap) {
                    while (!line.empty() && line.back() == ' ') line.pop_back();
                    s += line + "\n";
                    line = hanging;
                }
                line += word;
            };
            for (std::uint64_t i = 0; i < leading; ++i) {
                extend(recurse(axis + 1, next_hanging, next_width));
                line += ", ";
            }
            if (summary) {
                extend("...");
                line += ", ";
            }
            for (std::uint64_t i = 1; i < trailing; ++i) {
                extend(recurse(axis + 1, next_hanging, next_width));
                line += ", ";
            }
            extend(recurse(axis + 1, next_hanging, next_width));
            s += line;
        } else {
            const std::string separator = "," + std::string(shape_.size() - axis - 1, '\n');
            for (std::uint64_t i = 0; i < leading; ++i)
                s += hanging + recurse(axis + 1, next_hanging, next_width) + separator;
            if (summary) s += hanging + "..." + separator;
            for (std::uint64_t i = 1; i < trailing; ++i)
                s += hanging + recurse(axis + 1, next_hanging, next_width) + separator;
            s += hanging + recurse(axis + 1, next_hanging, next_width);
        }
        return "[" + s.substr(hanging.size()) + "]";
    }

    const std::vector<std::uint64_t>& shape_;
    const std::vector<std::string>& words_;
    bool summarise_;
    std::uint64_t edge_;
    std::size_t next_ = 0;
};

// Right-aligned to the widest, as NumPy's IntegerFormat.
inline void align_right(std::vector<std::string>& words) {
    std::size_t width = 0;
    for (const std::string& w : words) width = std::max(width, w.size());
    for (std::string& w : words) w.insert(0, width - w.size(), ' ');
}

// Complex elements as "(re+imj)": each part in NumPy's format for the tensor's real or
// imaginary parts (ComplexFloatingFormat), without its padding; the elements right-aligned.
inline std::vector<std::string> complex_words(const std::vector<double>& values, int precision) {
    std::vector<double> re, im;
    for (std::size_t i = 0; i + 1 < values.size(); i += 2) {
        re.push_back(values[i]);
        im.push_back(values[i + 1]);
    }
    const float_formatter real(re, format_of(st::dtype::F32), precision, false);
    const float_formatter imag(im, format_of(st::dtype::F32), precision, true);
    const auto trimmed = [](const std::string& text) {
        const std::size_t first = text.find_first_not_of(' ');
        return text.substr(first, text.find_last_not_of(' ') + 1 - first);
    };
    std::vector<std::string> words;
    for (std::size_t i = 0; i < re.size(); ++i) words.push_back("(" + trimmed(real(re[i])) + trimmed(imag(im[i])) + "j)");
    align_right(words);
    return words;
}

// The texts of the shown elements, in order, in one format for the tensor.
template <class Source>
std::vector<std::string> shown_words(const Source& source, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& runs,
                                     const print_options& options, bool scalar) {
    const st::dtype t = source.dtype();
    std::vector<std::string> words;
    if (kind_of(t) == value_kind::integer) {
        for (const auto& run : runs)
            for_each_integer(source, run.first, run.second, [&words](std::string text) { words.push_back(std::move(text)); });
        align_right(words);
        return words;
    }
    std::vector<double> values;
    for (const auto& run : runs) decode_range(source, run.first, run.second, values);
    switch (kind_of(t)) {
        case value_kind::boolean:
            // " True" lines up with "False", except for a lone scalar.
            for (double v : values) words.push_back(v != 0 ? (scalar ? "True" : " True") : "False");
            return words;
        case value_kind::complex: return complex_words(values, options.precision);
        default: break;
    }
    const float_formatter format(values, format_of(t), options.precision, false);
    for (double v : values) words.push_back(format(v));
    return words;
}

template <class Source>
std::string array_text(const Source& source, const print_options& options) {
    const std::vector<std::uint64_t> shape(source.shape().begin(), source.shape().end());
    const std::uint64_t total = element_count(shape);
    if (total == 0) return "[]";
    const bool summarise = total > options.threshold;
    const auto runs = shown_runs(shape, summarise, options.edgeitems);
    const std::vector<std::string> words = shown_words(source, runs, options, shape.empty());
    if (shape.empty()) return words.front();
    return array_printer(shape, words, summarise, options.edgeitems).print();
}

// ---- JSON -----------------------------------------------------------------------------------

// Nested JSON arrays following a shape, opened and closed around each element in row-major
// order (an odometer over the indices).
class nested_arrays {
public:
    nested_arrays(std::string& out, const std::vector<std::uint64_t>& shape) : out_(out), shape_(shape), at_(shape.size()) {
        out_.append(shape_.size(), '[');
    }
    // After each element: close the axes that wrapped, then open them again unless done.
    void next() {
        std::size_t a = shape_.size();
        while (a > 0 && ++at_[a - 1] == shape_[a - 1]) {
            at_[--a] = 0;
            out_ += ']';
        }
        if (a == 0) return;
        out_ += ", ";
        out_.append(shape_.size() - a, '[');
    }

private:
    std::string& out_;
    const std::vector<std::uint64_t>& shape_;
    std::vector<std::uint64_t> at_;
};

// An empty tensor's nesting: [] for shape [0], [[], []] for shape [2, 0].
inline void append_empty(std::string& out, const std::vector<std::uint64_t>& shape, std::size_t axis) {
    out += '[';
    if (shape[axis] != 0)
        for (std::uint64_t i = 0; i < shape[axis]; ++i) {
            if (i) out += ", ";
            append_empty(out, shape, axis + 1);
        }
    out += ']';
}

template <class Source>
void append_json_values(std::string& out, const Source& source) {
    const std::vector<std::uint64_t> shape(source.shape().begin(), source.shape().end());
    const std::uint64_t total = element_count(shape);
    if (total == 0) return append_empty(out, shape, 0);
    nested_arrays nesting(out, shape);
    const st::dtype t = source.dtype();
    if (kind_of(t) == value_kind::integer) {
        for_each_integer(source, 0, total, [&](const std::string& text) {
            out += text;
            nesting.next();
        });
        return;
    }
    const bool complex = kind_of(t) == value_kind::complex;
    for_each_chunk(source, [&](const double* values, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if (complex) {
                out += '[';
                append_json_number(out, values[2 * i]);
                out += ", ";
                append_json_number(out, values[2 * i + 1]);
                out += ']';
            } else {
                append_json_number(out, values[i]);
            }
            nesting.next();
        }
    });
}

// ---- The command ----------------------------------------------------------------------------

struct selected {
    st::tensor_view view;
    std::optional<st::tensor_slice> slice;
};

inline std::string header_line(const selected& s, const std::string& spec) {
    std::string line = printable(s.view.name());
    if (s.slice) line += "[" + printable(spec) + "]";
    return line + ": " + std::string(st::to_string(s.view.dtype())) + " " +
           shape_text(s.slice ? s.slice->shape() : s.view.shape()) + "\n";
}

} // namespace values_detail

struct values_options {
    std::string file;
    std::vector<std::string> names;
    std::string slice;
    bool json = false;
    std::string precision;
    std::string threshold;
    std::string edgeitems;
};

inline values_detail::print_options parse_print_options(const CLI::App& app, const values_options& opts) {
    values_detail::print_options p;
    if (app.count("--precision")) {
        const auto n = parse_whole_number(opts.precision);
        if (!n || *n > 30)
            throw usage_error("--precision needs a whole number from 0 to 30, got " + st::detail::quote(opts.precision));
        p.precision = static_cast<int>(*n);
    }
    if (app.count("--threshold")) {
        const auto n = parse_whole_number(opts.threshold);
        if (!n) throw usage_error("--threshold needs a whole number, got " + st::detail::quote(opts.threshold));
        p.threshold = *n;
    }
    if (app.count("--edgeitems")) {
        const auto n = parse_whole_number(opts.edgeitems);
        if (!n || *n == 0)
            throw usage_error("--edgeitems needs a positive whole number, got " + st::detail::quote(opts.edgeitems));
        p.edgeitems = *n;
    }
    return p;
}

inline int run_values(const CLI::App& app, const values_options& opts) {
    const bool sliced = app.count("--slice") != 0;
    if (sliced && opts.names.empty()) throw usage_error("--slice needs at least one NAME");
    if (opts.json)
        for (const char* flag : {"--precision", "--threshold", "--edgeitems"})
            if (app.count(flag)) throw usage_error(std::string(flag) + " does not apply to --json");
    const values_detail::print_options print = parse_print_options(app, opts);

    // Every name is looked up (and every slice planned) before anything is read.
    const checkpoint input(opts.file, /*validate=*/false);
    std::vector<values_detail::selected> tensors;
    if (opts.names.empty()) {
        for (const checkpoint::entry& e : input.entries()) tensors.push_back({e.view, std::nullopt});
    } else {
        std::vector<std::string> seen;
        for (const std::string& name : opts.names) {
            if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;  // each once
            seen.push_back(name);
            st::tensor_view view = input.tensor(name);
            std::optional<st::tensor_slice> slice;
            if (sliced) slice = view.slice(opts.slice);
            tensors.push_back({view, slice});
        }
    }

    std::string out;
    if (opts.json) {
        out = tensors.empty() ? "{" : "{\n";
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            out += "  ";
            append_json_string(out, tensors[i].view.name());
            out += ": ";
            if (tensors[i].slice) values_detail::append_json_values(out, *tensors[i].slice);
            else values_detail::append_json_values(out, tensors[i].view);
            out += i + 1 < tensors.size() ? ",\n" : "\n";
        }
        out += "}\n";
    } else {
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            if (i) out += "\n";
            out += values_detail::header_line(tensors[i], opts.slice);
            out += tensors[i].slice ? values_detail::array_text(*tensors[i].slice, print)
                                    : values_detail::array_text(tensors[i].view, print);
            out += "\n";
        }
    }
    write_stdout(out);
    return exit_ok;
}

inline const char values_description[] =
    "Prints the elements of tensors of FILE (a .safetensors file, an index or a checkpoint folder):\n"
    "the tensors NAME, in the order given, or without NAME every tensor, each after a line\n"
    "\"NAME: DTYPE [shape]\". The text follows NumPy's array printing: nested brackets, lines of\n"
    "at most 75 columns, one number format per tensor, and \"...\" for the middle of every axis\n"
    "longer than 2 * --edgeitems once a tensor has more than --threshold elements. Floats show the\n"
    "fewest digits that identify them (as float16 for F16, float64 for F64, float32 for the others),\n"
    "at most --precision after the point; complex elements are (re+imj). --json prints every\n"
    "element exactly instead.";

inline command add_values(CLI::App& root) {
    auto opts = std::make_shared<values_options>();
    CLI::App* app = root.add_subcommand("values", "Print tensors' elements (like NumPy, or exact JSON)");
    app->description(values_description);
    app->add_option("--slice", opts->slice,
                    "print only the elements SPEC selects of each NAME: Python/torch basic indexing, e.g. "
                    "\"0, :, 1:3\" or \"..., ::2\"")
        ->type_name("SPEC");
    app->add_flag("--json", opts->json,
                  "print {NAME: values} with the values as nested arrays following the shape: floats exact "
                  "(shortest text that reads back), \"nan\", \"inf\", \"-inf\" as strings, integers exact, "
                  "BOOL as 0 and 1, complex as [re, im]");
    app->add_option("--precision", opts->precision, "at most P digits after the point (0 to 30; default 8)")
        ->type_name("P");
    app->add_option("--threshold", opts->threshold,
                    "summarise tensors of more than N elements (default 1000)")
        ->type_name("N");
    app->add_option("--edgeitems", opts->edgeitems,
                    "when summarising, show the first and last N items of each long axis (default 3)")
        ->type_name("N");
    app->add_option("FILE", opts->file, "safetensors file, index or checkpoint folder")->required();
    app->add_option("NAME", opts->names, "tensors to print (default: all)");
    return {app, [app, opts] { return run_values(*app, *opts); }};
}

} // namespace cli
