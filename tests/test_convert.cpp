// Dtype conversion (convert.hpp): every code of every small float format against the reference
// tables, torch's F32 -> F16/BF16 rounding of 262,144 samples, on every kernel path this CPU
// runs (the others are skipped with a message); the paths against each other at odd lengths and
// misaligned addresses; whole tensors, slices and owned tensors; exact errors.
#include <doctest/doctest.h>

#include <safetensors/convert.hpp>
#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/bytes.hpp"
#include "support/errors.hpp"
#include "support/json.hpp"

namespace st = safetensors;
using st::convert_path;
using st::dtype;
using st::errc;
using test_support::data_path;
using test_support::error_of;

namespace {

std::vector<std::byte> read_table(const std::string& name) { return test_support::read_all(test_support::dtype_table_path(name)); }

// By reference: on 32-bit x86, a float passed by value goes through an x87 load, which quiets
// a signaling NaN (sets its top mantissa bit) before the bits can be read.
std::uint32_t bits_of(const float& f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float float_of(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
bool is_nan_bits(std::uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }
template <class T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// The paths this CPU runs; the others are reported once per test case.
std::vector<convert_path> runnable_paths() {
    std::vector<convert_path> out;
    for (convert_path p : st::all_convert_paths) {
        if (st::convert_path_supported(p)) out.push_back(p);
        else MESSAGE("convert path " << st::to_string(p) << " is not supported on this CPU or build: skipped");
    }
    return out;
}

st::convert_options on(convert_path p) { return st::convert_options{p}; }

std::vector<float> convert_all(dtype from, const std::vector<std::byte>& src, std::size_t count, convert_path p) {
    std::vector<float> out(count, -1.0f);
    const std::uint64_t n = st::convert(from, src, dtype::F32, st::span<std::byte>(reinterpret_cast<std::byte*>(out.data()), 4 * out.size()), on(p));
    CHECK(n == count);
    return out;
}

// A table value: a number (compared bit for bit as a float, so -0 differs from 0) or "nan",
// "inf", "-inf".
void check_decoded(float got, const nlohmann::json& want, const std::string& where, std::size_t& mismatches) {
    bool ok;
    if (want.is_string()) {
        const std::string s = want.get<std::string>();
        ok = s == "nan" ? std::isnan(got)
                        : got == (s == "inf" ? 1 : -1) * std::numeric_limits<float>::infinity();
    } else {
        ok = bits_of(got) == bits_of(static_cast<float>(want.get<double>())) &&
             static_cast<double>(got) == want.get<double>();
    }
    if (!ok && ++mismatches <= 5) FAIL_CHECK(where << ": got " << got << ", want " << want.dump());
}

// Each code of a small-format table packed as the format packs it.
std::vector<std::byte> packed_codes(dtype t, unsigned codes) {
    std::vector<std::byte> out;
    if (t == dtype::F4) {
        for (unsigned c = 0; c < codes; c += 2) out.push_back(std::byte(c | ((c + 1) << 4)));
    } else if (t == dtype::F6_E2M3 || t == dtype::F6_E3M2) {
        for (unsigned g = 0; g < codes; g += 4) {
            const std::uint32_t v = g | ((g + 1) << 6) | ((g + 2) << 12) | ((g + 3) << 18);
            for (int k = 0; k < 3; ++k) out.push_back(std::byte((v >> (8 * k)) & 0xff));
        }
    } else {
        for (unsigned c = 0; c < codes; ++c) out.push_back(std::byte(c));
    }
    return out;
}

// What the scalar decoders of dtype.hpp give for element i of a packed buffer.
float reference_f32(dtype t, const std::vector<std::byte>& src, std::size_t i) {
    return static_cast<float>(st::element_to_double(t, src.data(), i));
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::byte> out(n);
    for (auto& b : out) b = std::byte(rng() & 0xff);
    return out;
}

} // namespace

TEST_SUITE("convert") {

TEST_CASE("paths: names, support, automatic choice") {
    CHECK(st::to_string(convert_path::automatic) == "automatic");
    CHECK(st::to_string(convert_path::scalar) == "scalar");
    CHECK(st::to_string(convert_path::avx2) == "avx2");
    CHECK(st::to_string(convert_path::avx512) == "avx512");
    CHECK(st::convert_path_supported(convert_path::automatic));
    CHECK(st::convert_path_supported(convert_path::scalar));
    const convert_path best = st::best_convert_path();
    CHECK(best != convert_path::automatic);
    CHECK(st::convert_path_supported(best));
    if (st::convert_path_supported(convert_path::avx512)) CHECK(best == convert_path::avx512);
    MESSAGE("best convert path here: " << st::to_string(best));
    for (convert_path p : st::all_convert_paths) MESSAGE(st::to_string(p) << ": " << std::string(st::convert_path_supported(p) ? "yes" : "no"));
}

TEST_CASE("can_convert") {
    for (dtype from : st::all_dtypes) {
        CAPTURE(st::to_string(from));
        CHECK(st::can_convert(from, dtype::F32) == (from != dtype::BOOL && from != dtype::C64));
        CHECK(st::can_convert(from, dtype::BF16) == (from == dtype::F32 || from == dtype::BF16));
        CHECK(st::can_convert(from, dtype::F16) == (from == dtype::F32 || from == dtype::F16));
        for (dtype to : st::all_dtypes)
            if (to != dtype::F32 && to != dtype::BF16 && to != dtype::F16) CHECK_FALSE(st::can_convert(from, to));
    }
}

TEST_CASE("BF16 -> F32: all 65,536 codes, bit for bit, on every path") {
    const std::vector<std::byte> want = read_table("bf16_to_f32.bin");
    REQUIRE(want.size() == 65536u * 4);
    std::vector<std::byte> codes(65536 * 2);
    for (std::uint32_t c = 0; c < 65536; ++c) {
        codes[2 * c] = std::byte(c & 0xff);
        codes[2 * c + 1] = std::byte(c >> 8);
    }
    for (convert_path p : runnable_paths()) {
        CAPTURE(st::to_string(p));
        const std::vector<float> got = convert_all(dtype::BF16, codes, 65536, p);
        std::size_t mismatches = 0;
        for (std::uint32_t c = 0; c < 65536; ++c)  // exact, NaN payloads included (a shift keeps them)
            if (bits_of(got[c]) != load<std::uint32_t>(&want[4 * c]) && ++mismatches <= 5)
                FAIL_CHECK("code " << c << ": got " << bits_of(got[c]));
        CHECK(mismatches == 0);
    }
}

TEST_CASE("F16 -> F32: all 65,536 codes on every path; paths agree bit for bit") {
    const std::vector<std::byte> want = read_table("f16_to_f32.bin");
    REQUIRE(want.size() == 65536u * 4);
    std::vector<std::byte> codes(65536 * 2);
    for (std::uint32_t c = 0; c < 65536; ++c) {
        codes[2 * c] = std::byte(c & 0xff);
        codes[2 * c + 1] = std::byte(c >> 8);
    }
    const std::vector<float> scalar = convert_all(dtype::F16, codes, 65536, convert_path::scalar);
    for (convert_path p : runnable_paths()) {
        CAPTURE(st::to_string(p));
        const std::vector<float> got = convert_all(dtype::F16, codes, 65536, p);
        std::size_t mismatches = 0;
        for (std::uint32_t c = 0; c < 65536; ++c) {
            const std::uint32_t w = load<std::uint32_t>(&want[4 * c]), g = bits_of(got[c]);
            // numpy keeps a signaling NaN's payload as is; every path quiets it (as F16C does),
            // keeping sign and payload: so NaN is the table's bits with the quiet bit set.
            const bool ok = is_nan_bits(w) ? g == (w | 0x00400000u) : g == w;
            if ((!ok || g != bits_of(scalar[c])) && ++mismatches <= 5)
                FAIL_CHECK("code " << c << ": got " << g << ", want " << w << ", scalar " << bits_of(scalar[c]));
        }
        CHECK(mismatches == 0);
    }
}

TEST_CASE("F8, F6, F4 -> F32: every code against the tables, on every path") {
    struct format { dtype t; const char* table; unsigned codes; };
    const format formats[] = {{dtype::F8_E4M3, "F8_E4M3.json", 256},       {dtype::F8_E5M2, "F8_E5M2.json", 256},
                              {dtype::F8_E8M0, "F8_E8M0.json", 256},       {dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ.json", 256},
                              {dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ.json", 256}, {dtype::F6_E2M3, "F6_E2M3.json", 64},
                              {dtype::F6_E3M2, "F6_E3M2.json", 64},        {dtype::F4, "F4.json", 16}};
    const std::vector<convert_path> paths = runnable_paths();
    for (const format& f : formats) {
        CAPTURE(f.table);
        const nlohmann::json table = test_support::read_json(test_support::dtype_table_path(f.table));
        REQUIRE(table.size() == f.codes);
        const std::vector<std::byte> src = packed_codes(f.t, f.codes);
        for (convert_path p : paths) {
            CAPTURE(st::to_string(p));
            const std::vector<float> got = convert_all(f.t, src, f.codes, p);
            std::size_t mismatches = 0;
            for (unsigned c = 0; c < f.codes; ++c)
                check_decoded(got[c], table.at(std::to_string(c)), "code " + std::to_string(c), mismatches);
            CHECK(mismatches == 0);
        }
    }
}

TEST_CASE("F32 -> F16 and BF16: torch's rounding of 262,144 samples, on every path") {
    const std::vector<std::byte> samples = read_table("f32_samples.bin");
    const std::vector<std::byte> want_f16 = read_table("f32_to_f16.bin");
    const std::vector<std::byte> want_bf16 = read_table("f32_to_bf16.bin");
    const std::size_t n = samples.size() / 4;
    REQUIRE(n == 262144);
    REQUIRE(want_f16.size() == 2 * n);
    REQUIRE(want_bf16.size() == 2 * n);
    for (convert_path p : runnable_paths()) {
        CAPTURE(st::to_string(p));
        std::vector<std::byte> f16(2 * n), bf16(2 * n);
        CHECK(st::convert(dtype::F32, samples, dtype::F16, f16, on(p)) == n);
        CHECK(st::convert(dtype::F32, samples, dtype::BF16, bf16, on(p)) == n);
        std::size_t f16_bad = 0, bf16_bad = 0, nans = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t x = load<std::uint32_t>(&samples[4 * i]);
            // F16: exact everywhere, NaN included (torch keeps sign and top payload bits, quiet).
            if (load<std::uint16_t>(&f16[2 * i]) != load<std::uint16_t>(&want_f16[2 * i]) && ++f16_bad <= 5)
                FAIL_CHECK("F16 sample " << i << " (" << x << "): got " << load<std::uint16_t>(&f16[2 * i]) << ", want "
                                         << load<std::uint16_t>(&want_f16[2 * i]));
            const std::uint16_t b = load<std::uint16_t>(&bf16[2 * i]), wb = load<std::uint16_t>(&want_bf16[2 * i]);
            bool ok;
            if (is_nan_bits(x)) {  // torch gives 0xFFFF for every NaN; we keep sign and payload, quiet
                ++nans;
                ok = (wb & 0x7fffu) > 0x7f80u && b == static_cast<std::uint16_t>((x >> 16) | 0x40u);
            } else {
                ok = b == wb;
            }
            if (!ok && ++bf16_bad <= 5) FAIL_CHECK("BF16 sample " << i << " (" << x << "): got " << b << ", want " << wb);
        }
        CHECK(f16_bad == 0);
        CHECK(bf16_bad == 0);
        CHECK(nans > 1000);  // the random half of the samples holds about 1,000 NaNs
    }
}

TEST_CASE("odd lengths, misaligned buffers and tails: every path equals the scalar decoders") {
    const dtype sources[] = {dtype::BF16, dtype::F16, dtype::F8_E4M3, dtype::F8_E5M2, dtype::F8_E8M0,
                             dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ, dtype::F6_E2M3, dtype::F6_E3M2, dtype::F4,
                             dtype::F32, dtype::F64, dtype::I8, dtype::U8, dtype::I16, dtype::U16,
                             dtype::I32, dtype::U32, dtype::I64, dtype::U64};
    const std::vector<convert_path> paths = runnable_paths();
    const std::vector<std::byte> pool = random_bytes(4096, 42);
    for (dtype from : sources) {
        CAPTURE(st::to_string(from));
        const std::size_t step = from == dtype::F6_E2M3 || from == dtype::F6_E3M2 ? 4 : from == dtype::F4 ? 2 : 1;
        for (std::size_t count = 0; count <= 70; count += step) {  // 0, tails, one vector, several
            for (std::size_t misalign = 0; misalign < 4; ++misalign) {
                const std::size_t bytes = static_cast<std::size_t>(count * st::bit_size(from) / 8);
                const std::vector<std::byte> src(pool.begin() + static_cast<std::ptrdiff_t>(misalign),
                                                 pool.begin() + static_cast<std::ptrdiff_t>(misalign + bytes));
                std::vector<std::byte> out(4 * count + 8);
                for (convert_path p : paths) {
                    // Unaligned source and destination: view the bytes from an odd offset.
                    std::vector<std::byte> in(bytes + misalign);
                    if (bytes) std::memcpy(in.data() + misalign, src.data(), bytes);
                    std::fill(out.begin(), out.end(), std::byte{0xAB});
                    const st::span<const std::byte> in_span(in.data() + misalign, bytes);
                    const st::span<std::byte> out_span(out.data() + misalign, 4 * count);
                    REQUIRE(st::convert(from, in_span, dtype::F32, out_span, on(p)) == count);
                    std::size_t bad = 0;
                    for (std::size_t i = 0; i < count; ++i) {
                        const float got = load<float>(out.data() + misalign + 4 * i);
                        float want;
                        if (from == dtype::I64) want = static_cast<float>(load<std::int64_t>(src.data() + 8 * i));
                        else if (from == dtype::U64) want = static_cast<float>(load<std::uint64_t>(src.data() + 8 * i));
                        else want = reference_f32(from, src, i);
                        const bool ok = std::isnan(want) ? std::isnan(got) : bits_of(got) == bits_of(want);
                        if (!ok && ++bad <= 3)
                            FAIL_CHECK(st::to_string(p) << " count " << count << " misalign " << misalign << " element " << i
                                                        << ": got " << got << ", want " << want);
                    }
                    CHECK(bad == 0);
                    // Nothing written past the last element.
                    for (std::size_t k = misalign + 4 * count; k < out.size(); ++k) REQUIRE(out[k] == std::byte{0xAB});
                    for (std::size_t k = 0; k < misalign; ++k) REQUIRE(out[k] == std::byte{0xAB});
                }
            }
        }
    }
}

TEST_CASE("every path gives the same bits as the scalar path (random data, NaNs included)") {
    const std::vector<std::byte> pool = random_bytes(4 * 1037 + 3, 7);
    const std::size_t n = 1037;  // not a multiple of any vector width
    struct pair { dtype from, to; };
    const pair pairs[] = {{dtype::BF16, dtype::F32}, {dtype::F16, dtype::F32},     {dtype::F8_E4M3, dtype::F32},
                          {dtype::F8_E5M2, dtype::F32}, {dtype::F8_E8M0, dtype::F32}, {dtype::F8_E4M3FNUZ, dtype::F32},
                          {dtype::F8_E5M2FNUZ, dtype::F32}, {dtype::F32, dtype::BF16}, {dtype::F32, dtype::F16}};
    for (const pair& pr : pairs) {
        CAPTURE(st::to_string(pr.from));
        CAPTURE(st::to_string(pr.to));
        const std::size_t in_bytes = n * st::bit_size(pr.from) / 8, out_bytes = n * st::bit_size(pr.to) / 8;
        const st::span<const std::byte> in(pool.data() + 1, in_bytes);
        std::vector<std::byte> scalar(out_bytes);
        st::convert(pr.from, in, pr.to, scalar, on(convert_path::scalar));
        for (convert_path p : runnable_paths()) {
            CAPTURE(st::to_string(p));
            std::vector<std::byte> got(out_bytes);
            st::convert(pr.from, in, pr.to, got, on(p));
            CHECK(got == scalar);
        }
    }
}

TEST_CASE("typed span primitives") {
    const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000};
    std::vector<float> f(5);
    st::bf16_to_f32(bf16, f);
    CHECK(bits_of(f[0]) == 0x3f800000u);
    CHECK(f[1] == -2.0f);
    CHECK(std::isinf(f[2]));
    CHECK(bits_of(f[3]) == 0x00010000u);
    CHECK(bits_of(f[4]) == 0x80000000u);

    const std::vector<std::uint16_t> f16 = {0x3c00, 0x7bff, 0x0001, 0xfc00};
    std::vector<float> g(4);
    st::f16_to_f32(f16, g);
    CHECK(g[0] == 1.0f);
    CHECK(g[1] == 65504.0f);
    CHECK(g[2] == std::ldexp(1.0f, -24));
    CHECK(g[3] == -std::numeric_limits<float>::infinity());

    const std::vector<float> in = {1.0f, 65520.0f, float_of(0x3f808000u), float_of(0x3f818000u), -0.0f,
                                   std::numeric_limits<float>::quiet_NaN()};
    std::vector<std::uint16_t> h(6), b(6);
    for (convert_path p : runnable_paths()) {
        st::f32_to_f16(in, h, on(p));
        st::f32_to_bf16(in, b, on(p));
        CHECK(h == std::vector<std::uint16_t>{0x3c00, 0x7c00, 0x3c04, 0x3c0c, 0x8000, 0x7e00});
        CHECK(b == std::vector<std::uint16_t>{0x3f80, 0x4780, 0x3f80, 0x3f82, 0x8000, 0x7fc0});  // ties to even
    }
    std::vector<float> bigger(8, 5.0f);  // a larger destination is fine; the rest is untouched
    st::bf16_to_f32(bf16, bigger);
    CHECK(bigger[5] == 5.0f);
}

TEST_CASE("whole tensors of the reference file equal element() for every convertible dtype") {
    const st::file f = st::open(data_path("reference/valid/all_dtypes.safetensors"));
    const std::vector<convert_path> paths = runnable_paths();
    std::size_t converted = 0;
    for (const st::tensor_view& t : f) {
        CAPTURE(t.name());
        if (!st::can_convert(t.dtype(), dtype::F32)) continue;
        for (convert_path p : paths) {
            const std::vector<float> got = st::to_f32(t, on(p));
            REQUIRE(got.size() == t.element_count());
            for (std::uint64_t i = 0; i < t.element_count(); ++i) {
                float want;
                if (t.dtype() == dtype::I64) want = static_cast<float>(load<std::int64_t>(t.data() + 8 * i));
                else if (t.dtype() == dtype::U64) want = static_cast<float>(load<std::uint64_t>(t.data() + 8 * i));
                else want = static_cast<float>(t.element(i));  // exact, or F64's one rounding
                if (std::isnan(want)) CHECK(std::isnan(got[i]));
                else CHECK(bits_of(got[i]) == bits_of(want));
            }
        }
        ++converted;
    }
    CHECK(converted == 28);  // all 29 tensors but the BOOL mask

    // The same through a caller's buffer, and an empty tensor into an empty one.
    const st::tensor_view special = f.tensor("special_bfloat16");
    std::vector<float> out(20);
    st::to_f32(special, st::span<float>(out));
    const std::vector<float> again = st::to_f32(special);  // holds NaNs: compare bits
    CHECK(std::memcmp(out.data(), again.data(), 4 * out.size()) == 0);
    st::to_f32(f.tensor("empty_f32_0x3"), st::span<float>());
}

TEST_CASE("slices convert run by run, like the packed copy") {
    const st::file f = st::open(data_path("reference/valid/slicing.safetensors"));
    const st::tensor_view x = f.tensor("x_bf16");  // [4, 6, 5]
    const std::vector<float> whole = st::to_f32(x);
    const std::vector<convert_path> paths = runnable_paths();
    const char* specs[] = {"1", ":, 2", "1:3, ::2, 1:4", "..., -1", ":, :, ::2", "::3, 1:, :", "2:2", ":"};
    for (const char* spec : specs) {
        CAPTURE(spec);
        const st::tensor_slice s = x.slice(spec);
        const st::tensor packed = s.to_tensor();
        for (convert_path p : paths) {
            const std::vector<float> got = st::to_f32(s, on(p));
            CHECK(got == st::to_f32(packed, on(p)));
            REQUIRE(got.size() == s.element_count());
        }
    }
    // Spot checks against the whole tensor: x[1:3, ::2, 1:4][1, 2, 0] is x[2, 4, 1].
    const std::vector<float> part = st::to_f32(x.slice("1:3, ::2, 1:4"));
    CHECK(bits_of(part[(1 * 3 + 2) * 3 + 0]) == bits_of(whole[(2 * 6 + 4) * 5 + 1]));
    // A slice into a larger buffer: exactly element_count() floats are written.
    std::vector<float> buffer(40, 9.0f);
    st::to_f32(x.slice(":, 2"), st::span<float>(buffer));  // [4, 5]: 20 elements
    CHECK(buffer[19] == whole[(3 * 6 + 2) * 5 + 4]);
    CHECK(buffer[20] == 9.0f);
}

TEST_CASE("sub-byte slices: F4 rows and F6 groups") {
    const st::file f4 = st::open(data_path("reference/valid/f4.safetensors"));
    const st::tensor_view q = f4.tensor("q");  // F4 [2, 4]
    const std::vector<float> all = st::to_f32(q);
    REQUIRE(all.size() == 8);
    for (std::uint64_t i = 0; i < 8; ++i) CHECK(all[i] == static_cast<float>(q.element(i)));
    const std::vector<float> row = st::to_f32(q.slice("1"));
    CHECK(row == std::vector<float>(all.begin() + 4, all.end()));

    // F6_E2M3 [2, 4]: codes 0..7 packed in two 3-byte groups; row 1 is the second group.
    const std::vector<std::byte> packed = packed_codes(dtype::F6_E2M3, 8);
    std::string data(packed.size(), '\0');
    std::memcpy(data.data(), packed.data(), packed.size());
    const st::file f6 = st::file::from_bytes(
        test_support::make_file("{\"t\":{\"dtype\":\"F6_E2M3\",\"shape\":[2,4],\"data_offsets\":[0,6]}}", data));
    const std::vector<float> second = st::to_f32(f6.tensor("t").slice("1"));
    CHECK(second == std::vector<float>{st::f6_e2m3_to_float(4), st::f6_e2m3_to_float(5), st::f6_e2m3_to_float(6),
                                       st::f6_e2m3_to_float(7)});
    CHECK(error_of([&] { (void)f6.tensor("t").slice(":, 1:3"); }).code == errc::unaligned_slice);  // 12-bit runs
}

TEST_CASE("owned tensors: F32 -> BF16 -> F32 keeps name and shape") {
    const st::file f = st::open(data_path("reference/valid/slicing.safetensors"));
    const st::tensor_view x = f.tensor("x_f32");  // [4, 6, 5]
    const st::tensor h = st::convert_tensor(x, dtype::BF16);
    CHECK(h.name() == "x_f32");
    CHECK(h.dtype() == dtype::BF16);
    CHECK(std::vector<std::uint64_t>(h.shape().begin(), h.shape().end()) == std::vector<std::uint64_t>{4, 6, 5});
    const std::vector<float> original = st::to_f32(x), back = st::to_f32(h);
    for (std::size_t i = 0; i < original.size(); ++i) {
        const std::uint32_t u = bits_of(original[i]);
        CHECK(bits_of(back[i]) == static_cast<std::uint32_t>(st::detail::f32_bits_to_bf16(u)) << 16);
    }
    const st::tensor sliced = st::convert_tensor(x.slice("1, :2"), dtype::F16);
    CHECK(sliced.name() == "x_f32");
    CHECK(std::vector<std::uint64_t>(sliced.shape().begin(), sliced.shape().end()) == std::vector<std::uint64_t>{2, 5});
    CHECK(st::convert_tensor(x, dtype::F32).bytes() == x.bytes());  // F32 -> F32 copies
}

TEST_CASE("errors name the tensor, the dtypes and the sizes") {
    const st::file f = st::open(data_path("reference/valid/all_dtypes.safetensors"));
    const st::file c = st::open(data_path("reference/valid/complex64.safetensors"));
    std::vector<float> out(64);

    auto e = error_of([&] { st::to_f32(c.tensor("c"), st::span<float>(out)); });
    CHECK(e.code == errc::unsupported_dtype);
    CHECK(e.message == "tensor \"c\": conversion from C64 to F32 is not supported");
    e = error_of([&] { (void)st::to_f32(f.tensor("mask_bool_2x5")); });
    CHECK(e.code == errc::unsupported_dtype);
    CHECK(e.message == "tensor \"mask_bool_2x5\": conversion from BOOL to F32 is not supported");
    e = error_of([&] { (void)st::convert_tensor(f.tensor("special_bfloat16"), dtype::F16); });
    CHECK(e.code == errc::unsupported_dtype);
    CHECK(e.message == "tensor \"special_bfloat16\": conversion from BF16 to F16 is not supported");
    e = error_of([&] { (void)st::convert_tensor(f.tensor("scalar_f32"), dtype::F64); });
    CHECK(e.message == "tensor \"scalar_f32\": conversion from F32 to F64 is not supported");

    const st::tensor_view special = f.tensor("special_bfloat16");  // 20 elements
    e = error_of([&] { st::to_f32(special, st::span<float>(out.data(), 19)); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"special_bfloat16\": converting 20 elements from BF16 to F32 needs 80 bytes, "
                       "destination holds 76");
    e = error_of([&] { st::to_f32(f.tensor("scalar_f32"), st::span<float>()); });
    CHECK(e.message == "tensor \"scalar_f32\": converting 1 element from F32 to F32 needs 4 bytes, destination holds 0");
    e = error_of([&] { st::to_f32(special.slice("2:9"), st::span<float>(out.data(), 6)); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"special_bfloat16\": converting 7 elements from BF16 to F32 needs 28 bytes, "
                       "destination holds 24");
    e = error_of([&] { st::to_f32(special, st::span<float>(nullptr, 20)); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "tensor \"special_bfloat16\": destination is null");

    std::vector<std::byte> bytes(16), dst(64);
    e = error_of([&] { st::convert(dtype::F16, st::span<const std::byte>(bytes.data(), 5), dtype::F32, dst); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "convert: source of 5 bytes is not a whole number of F16 elements");
    e = error_of([&] { st::convert(dtype::F6_E3M2, st::span<const std::byte>(bytes.data(), 4), dtype::F32, dst); });
    CHECK(e.message == "convert: source of 4 bytes is not a whole number of F6_E3M2 groups (4 elements in 3 bytes)");
    e = error_of([&] { st::convert(dtype::C64, bytes, dtype::F32, dst); });
    CHECK(e.code == errc::unsupported_dtype);
    CHECK(e.message == "convert: conversion from C64 to F32 is not supported");
    e = error_of([&] { st::convert(dtype::F32, bytes, dtype::BF16, st::span<std::byte>(dst.data(), 7)); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "convert: converting 4 elements from F32 to BF16 needs 8 bytes, destination holds 7");
    std::vector<float> three(3);
    e = error_of([&] { st::bf16_to_f32(std::vector<std::uint16_t>(4), three); });
    CHECK(e.message == "convert: converting 4 elements from BF16 to F32 needs 16 bytes, destination holds 12");

    // Forcing a path the CPU lacks is an error, never a crash (SIGILL).
    for (convert_path p : st::all_convert_paths) {
        if (st::convert_path_supported(p)) continue;
        e = error_of([&] { st::to_f32(special, st::span<float>(out), on(p)); });
        CHECK(e.code == errc::invalid_argument);
        CHECK(e.message == "convert_options: path " + std::string(st::to_string(p)) +
                               " is not supported by this CPU or build (best: " +
                               std::string(st::to_string(st::best_convert_path())) + ")");
    }

    // The non-throwing form carries the same error.
    const auto r = st::try_convert(c.tensor("c"), dtype::F32, dst);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == errc::unsupported_dtype);
    CHECK(r.error().message() == "tensor \"c\": conversion from C64 to F32 is not supported");
    std::vector<std::byte> room(80);
    const auto ok = st::try_convert(special, dtype::F32, room);
    REQUIRE(ok.ok());
    CHECK(*ok == 20);
}

} // TEST_SUITE
