// The header reader (detail/header_scanner.hpp) against nlohmann's parser: on every reference
// fixture, on the fuzz regressions, and on headers made to hit each edge of the scanner's shape
// (escapes, signs, fractions, exponents, leading zeros, 20-digit numbers, literals, stray bytes,
// truncation, nesting, unknown and repeated fields), both readers must build the same table or
// throw the same error. And the scanner must be what reads the headers writers produce.
#include <doctest/doctest.h>

#include <safetensors/header.hpp>

#include "fuzz/fuzz_header_scan.hpp"
#include "support/bytes.hpp"
#include "support/errors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace st = safetensors;

// A file's bytes from its header text, with data_size bytes of data.
std::vector<std::uint8_t> file_bytes(const std::string& header, std::size_t data_size) {
    std::vector<std::uint8_t> out(8);
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(header.size() >> (8 * i));
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + data_size);
    return out;
}

void check_agree(const std::vector<std::uint8_t>& bytes, const std::string& what) {
    const std::string diff = fuzz::disagreement(bytes.data(), bytes.size());
    CHECK_MESSAGE(diff.empty(), what, "\n", diff);
}

// What the scanner alone makes of a header: the table before the checks after the parse (no
// name order yet), or "unsupported" when it leaves the header to nlohmann.
std::string scanned(const std::string& text) {
    st::header_table table;
    if (!st::detail::header_scanner::scan(text, table)) return "unsupported";
    return fuzz::describe(table);
}

const std::string scan_test_tensor = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

// Headers the scanner reads to the end (the checks after the parse, shared by both paths, may
// still refuse them).
std::vector<std::string> scanned_headers() {
    const std::string& t = scan_test_tensor;
    return {
        "{" + t + "}",
        " \t\r\n{ " + t + " } \n",
        R"({"__metadata__":{"a":"b","c":"d"},)" + t + "}",
        R"({"__metadata__":null,)" + t + "}",
        R"({"__metadata__":{"a":"caf)" "\xc3\xa9" R"("},)" + t + "}",  // raw UTF-8 passes through
        R"({"t":{"dtype":"F32","shape":[9999999999999999999],"data_offsets":[0,8]}})",
        R"({})",
        R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
        R"({"t":{"shape":[2],"data_offsets":[0,8],"dtype":"F32"}})",
        R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})",  // the builder's size error
        "{" + t + "," + t + "}",                                        // a duplicate name
        R"({"t)" "\xf0\x9f\x98\x80" R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",  // a four-byte character
        // Begin offsets spelled as the end before them (compared, not converted), and others.
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[80,88]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,16]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
        R"("c":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        R"({"a":{"dtype":"U8","shape":[123456789012345],"data_offsets":[0,123456789012345]},)"
        R"("b":{"dtype":"U8","shape":[1],"data_offsets":[123456789012345,123456789012346]}})",
        R"({"a":{"dtype":"U8","shape":[1234567890123456],"data_offsets":[0,1234567890123456]},)"
        R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1234567890123456,1234567890123457]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"shape":[2],"data_offsets":[8,16],"dtype":"F32"},)"
        R"("c":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}} )",
    };
}

// Headers the scanner leaves to nlohmann, valid JSON or not.
std::vector<std::string> unscanned_headers() {
    const std::string& t = scan_test_tensor;
    return {
        "", "   ", "[1,2]", R"("header")", "7", "{" + t, "{" + t + ",}", "{" + t + "} x", "{" + t + "}}",
        "{" + t + "}truex", "{" + t + "\v}", "{" + t + "," + t + "x",
        R"({"t" {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",   // a missing colon
        R"({"t":{"dtype":"F32" "shape":[2],"data_offsets":[0,8]}})",   // a missing comma
        R"({"t":{}})", R"({"t":[]})", R"({"t":null})",
        R"({"t":{"dtype":"F32","shape":[2]}})",                                          // a missing field
        R"({"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})",      // a repeated field
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":{"x":[1,2,{"y":null}]}}})",  // unknown
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":tru}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":12a}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":'a'}})",
        R"({"t":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})",                    // an unknown dtype
        R"({"t":{"dtype":1,"shape":[2],"data_offsets":[0,8]}})",
        "{\"t\":{\"dtype\":\"F\x01" "32\",\"shape\":[2],\"data_offsets\":[0,8]}}",  // a control character
        R"({"t":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[-0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8)",
        R"({"t\u0041":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",             // an escape
        R"({"__metadata__":{"a":"\u00e9"},)" + t + "}", R"({"__metadata__":{"a":"x\"y"},)" + t + "}",
        R"({"__metadata__":{"a":1},)" + t + "}", R"({"__metadata__":{"a":true},)" + t + "}",
        R"({"__metadata__":{"a":null},)" + t + "}", R"({"__metadata__":{"a":-1},)" + t + "}",
        R"({"__metadata__":{"a":1.5},)" + t + "}", R"({"__metadata__":{"a":[1,{"b":[]}]},)" + t + "}",
        R"({"__metadata__":[],)" + t + "}", R"({"__metadata__":nul,)" + t + "}",
        R"({"__metadata__":nullx,)" + t + "}", R"({"__metadata__":null,"__metadata__":null})",
        "\xef\xbb\xbf{" + t + "}",                                       // a byte order mark
        "{" + t + "}\xc3\xa9",                                            // UTF-8 outside a string
        R"({"t)" "\xc3" R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",         // a cut sequence
        R"({"t)" "\xc0\xaf" R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",     // an overlong one
        R"({"t)" "\xed\xa0\x80" R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", // a surrogate
        R"({"__metadata__":{"a":")" + std::string(20, 'x') + "\xff" + R"("},)" + t + "}",
        std::string("{\"t") + '\0' + R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",  // a NUL byte
        std::string(200, '[') + std::string(200, ']'),  // nests past the limit
        "{\"a\":" + std::string(126, '[') + std::string(126, ']') + "}",
    };
}

} // namespace

TEST_CASE("header scan: the scanner and nlohmann agree on every reference fixture and fuzz regression") {
    std::size_t files = 0;
    for (const char* folder : {"reference/valid", "reference/malformed", "reference/model/gpt2_tiny",
                               "reference/model/gpt2_tiny_sharded", "fuzz-regressions"}) {
        const std::filesystem::path dir = test_support::data_path(folder);
        if (!std::filesystem::exists(dir)) continue;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
            if (!entry.is_regular_file()) continue;
            const auto bytes = test_support::read_all(entry.path().string());
            std::vector<std::uint8_t> data(bytes.size());
            if (!data.empty()) std::memcpy(data.data(), bytes.data(), bytes.size());
            check_agree(data, entry.path().string());
            ++files;
        }
    }
    CHECK(files > 60);
}

TEST_CASE("header scan: each edge of the scanner's shape gives nlohmann's table or error") {
    for (const auto& headers : {scanned_headers(), unscanned_headers()})
        for (const std::string& header : headers)
            for (std::size_t data : {0, 4, 8, 16, 24}) check_agree(file_bytes(header, data), header);

    // Every prefix of a canonical header, and every one-byte change of it.
    const std::string canonical = R"({"__metadata__":{"format":"pt"},"a.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"I64","shape":[],"data_offsets":[12,20]}})";
    for (std::size_t n = 0; n <= canonical.size(); ++n) check_agree(file_bytes(canonical.substr(0, n), 20), "prefix");
    for (std::size_t i = 0; i < canonical.size(); ++i)
        for (char c : {' ', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '9', '-', '.', 'e', 'x', '\n', '\x7f'}) {
            std::string mutated = canonical;
            mutated[i] = c;
            check_agree(file_bytes(mutated, 20), mutated);
        }
}

TEST_CASE("header scan: the scanner reads what writers write, and leaves the rest to nlohmann") {
    CHECK(scanned(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}})") ==
          "0 0\nw F16 [2,3,] 0 12\n\nmetadata\nformat=pt\n");
    // Fields in any order, JSON whitespace anywhere, null or empty metadata, scalars, no tensors.
    CHECK(scanned(" {\n \"b\" : { \"shape\" : [ ] ,\t\"data_offsets\" : [ 4 , 12 ] , \"dtype\" : \"I64\" } ,"
                  " \"__metadata__\" : null , \"a\" :{\"data_offsets\":[0,4],\"dtype\":\"F32\",\"shape\":[1]}\r\n} ") ==
          "0 0\nb I64 [] 4 12\na F32 [1,] 0 4\n");
    CHECK(scanned(R"({"__metadata__":{}})") == "0 0\n\nmetadata\n");
    CHECK(scanned("{}") == "0 0\n");
    CHECK(scanned(R"({"t":{"dtype":"U8","shape":[1234567890123456789,0],"data_offsets":[0,0]}})") ==
          "0 0\nt U8 [1234567890123456789,0,] 0 0\n");
    // A name long enough for the sixteen- and eight-byte steps, with its closing quote at every offset.
    for (std::size_t n = 0; n < 40; ++n) {
        const std::string name(n, 'x'), rest = R"(":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
        CHECK(scanned("{\"" + name + rest) == "0 0\n" + name + " F32 [] 0 4\n");
        CHECK(scanned("{\"" + name + "\\n" + rest) == "unsupported");
        CHECK(scanned("{\"" + name + "\x1f" + rest) == "unsupported");
        CHECK(scanned("{\"" + name) == "unsupported");
    }
    // Numbers of every length up to 19 digits, where the sixteen-byte count and the eight-digit
    // steps meet.
    std::string digits = "1";
    for (std::size_t n = 1; n <= 19; ++n, digits += char('0' + n % 10))
        CHECK(scanned(R"({"t":{"dtype":"U8","shape":[)" + digits + R"(],"data_offsets":[0,)" + digits + "]}}") ==
              "0 0\nt U8 [" + digits + ",] 0 " + digits + "\n");
    for (const std::string& header : scanned_headers()) CHECK_MESSAGE(scanned(header) != "unsupported", header);
    for (const std::string& header : unscanned_headers()) CHECK_MESSAGE(scanned(header) == "unsupported", header);
}

TEST_CASE("header scan: the scanner completes the headers of the reference model files") {
    std::size_t files = 0;
    for (const char* folder : {"reference/model/gpt2_tiny", "reference/model/gpt2_tiny_sharded"}) {
        for (const auto& entry : std::filesystem::directory_iterator(test_support::data_path(folder))) {
            if (entry.path().extension() != ".safetensors") continue;
            const auto bytes = test_support::read_all(entry.path().string());
            std::uint64_t n = 0;
            std::memcpy(&n, bytes.data(), 8);
            CHECK_MESSAGE(scanned(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, n)) != "unsupported", entry.path().string());
            ++files;
        }
    }
    CHECK(files >= 3);
}

TEST_CASE("header scan: the name index orders names bytewise, whatever their shared prefix and length") {
    // Names that share prefixes of every length to 40 bytes and differ at one byte (ASCII or the
    // first byte of a two-byte character), or only in length, listed in a scrambled order.
    const std::string prefix = "model.layers.12.self_attn.q_proj.weight.x";
    std::vector<std::string> names;
    for (std::size_t shared = 0; shared <= 40; ++shared)
        for (const char* tail : {"a", "b", "\xc3\xa9", "", "a.", "\x7f"}) names.push_back(prefix.substr(0, shared) + tail);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<std::string> file_order = names;
    for (std::size_t i = 0; i < file_order.size(); ++i) std::swap(file_order[i], file_order[(i * 7919) % file_order.size()]);
    for (bool sorted_in_file : {false, true}) {
        const std::vector<std::string>& listed = sorted_in_file ? names : file_order;
        std::string header = "{";
        for (std::size_t i = 0; i < listed.size(); ++i)
            header += (i ? "," : "") + ("\"" + listed[i] + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[") +
                      std::to_string(i) + "," + std::to_string(i + 1) + "]}";
        header += "}";
        const st::header_table table = st::parse_header(header, listed.size());
        std::vector<std::string> by_index;
        for (auto i : table.sorted_indices()) by_index.emplace_back(table.name(i));
        CHECK(by_index == names);
        for (const std::string& name : names) CHECK(table.find(name).has_value());
        // The same with one name twice: refused, whatever the name's length.
        const std::string twice = header.substr(0, header.size() - 1) + ",\"" + listed[listed.size() / 2] +
                                  "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[" + std::to_string(listed.size()) +
                                  "," + std::to_string(listed.size()) + "]}}";
        CHECK_THROWS_WITH(st::parse_header(twice, listed.size()),
                          ("[safetensors.error.211] duplicate tensor name \"" + listed[listed.size() / 2] + "\"").c_str());
    }
}

TEST_CASE("header scan: repeated shapes and dtypes, as checkpoints repeat them, give nlohmann's table or error") {
    // The usual entry is read whole and its shape looked up by its text among those read
    // before: shapes that share their first eight bytes, longer than fifteen bytes, of rank
    // five, whose element count overflows, empty; dtypes changing from one entry to the next.
    struct kind {
        const char* dtype;
        std::uint64_t bytes;  // per element
        const char* shape;
        std::uint64_t elements;
    };
    const kind kinds[] = {
        {"BF16", 2, "[12345678,1]", 12345678},  {"BF16", 2, "[12345678,2]", 24691356},
        {"F32", 4, "[3,4]", 12},                {"BF16", 2, "[3,4]", 12},
        {"U8", 1, "[1,1,1,1,7]", 7},            {"U8", 1, "[1000000,1000000,1]", 1000000000000},
        {"F64", 8, "[]", 1},                    {"I16", 2, "[0,5]", 0},
        {"BF16", 2, "[12345678,1]", 12345678},  {"F32", 4, "[3,4]", 12},
        {"U8", 1, "[4294967296,4294967296]", 0},  // overflows: refused by the size check
    };
    const std::size_t order[] = {0, 1, 0, 2, 3, 2, 3, 4, 4, 5, 6, 6, 7, 0, 1, 8, 9, 2, 5, 0};
    auto header_of = [&](const std::vector<std::size_t>& picks, std::size_t wrong_at, std::uint64_t& data_size) {
        std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
        std::uint64_t offset = 0;
        for (std::size_t i = 0; i < picks.size(); ++i) {
            const kind& k = kinds[picks[i]];
            const std::uint64_t end = offset + k.bytes * k.elements + (i == wrong_at ? 1 : 0);
            header += ",\"model.layers." + std::to_string(i / 10) + "." + std::to_string(i % 10) + ".weight\":{\"dtype\":\"" +
                      k.dtype + "\",\"shape\":" + k.shape + ",\"data_offsets\":[" + std::to_string(offset) + "," +
                      std::to_string(end) + "]}";
            offset = end;
        }
        data_size = offset;
        return header + "}";
    };
    std::vector<std::size_t> picks(std::begin(order), std::end(order));
    std::uint64_t data_size = 0;
    const std::string valid = header_of(picks, SIZE_MAX, data_size);
    const st::header_table table = st::parse_header(valid, data_size);
    REQUIRE(table.size() == picks.size());
    for (std::size_t i = 0; i < picks.size(); ++i) {
        const kind& k = kinds[picks[i]];
        std::string shape = "[";
        for (std::uint64_t d : table[i].shape) shape += (shape.size() > 1 ? "," : "") + std::to_string(d);
        CHECK(shape + "]" == k.shape);
        CHECK(st::to_string(table[i].dtype) == k.dtype);
    }
    // Both readers, on a data section as large as the header says (no file is made).
    auto agree = [](const std::string& header, std::uint64_t size) {
        using st::detail::json_reader;
        const std::string fast = fuzz::outcome(header, size, json_reader::automatic);
        CHECK_MESSAGE(fast == fuzz::outcome(header, size, json_reader::nlohmann), header);
        return fast;
    };
    CHECK(agree(valid, data_size).rfind("ok\n", 0) == 0);
    // A size that does not match the shape, at each position (each error names its tensor).
    for (std::size_t wrong = 0; wrong < picks.size(); ++wrong) {
        const std::string header = header_of(picks, wrong, data_size);
        CHECK(agree(header, data_size).rfind("error " + std::to_string(static_cast<int>(st::errc::size_mismatch)), 0) == 0);
    }
    // The overflowing shape, twice: its text is looked up after it was read once.
    picks.push_back(10);
    picks.push_back(10);
    const std::string overflowing = header_of(picks, SIZE_MAX, data_size);
    CHECK(agree(overflowing, data_size).rfind("error " + std::to_string(static_cast<int>(st::errc::shape_overflow)), 0) == 0);
    CHECK(test_support::error_of([&] { (void)st::parse_header(overflowing, data_size); }).code == st::errc::shape_overflow);
}

TEST_CASE("header scan: tensors of one shape share its dimensions, also after a member the fast path gave back") {
    // The first [3,5] is read by the fast path, whose offsets then fail it (a space): the
    // general path reads it again. Later ones are found by their text, until [7,2], whose
    // text takes the same place in the cache, pushes [3,5] out. The padding gives the last
    // members the room the fast path reads ahead.
    const std::string header =
        "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3,5],\"data_offsets\":[0, 30]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3,5],\"data_offsets\":[30,90]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[5,3],\"data_offsets\":[90,120]},"
        "\"d\":{\"dtype\":\"BF16\",\"shape\":[3,5],\"data_offsets\":[120,150]},"
        "\"e\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[150,151]},"
        "\"f\":{\"dtype\":\"BF16\",\"shape\":[5,3],\"data_offsets\":[151,181]},"
        "\"g\":{\"dtype\":\"BF16\",\"shape\":[7,2],\"data_offsets\":[181,209]},"
        "\"h\":{\"dtype\":\"BF16\",\"shape\":[3,5],\"data_offsets\":[209,239]}}" +
        std::string(64, ' ');
    const st::header_table table = st::parse_header(header, 239);
    const std::vector<std::vector<std::uint64_t>> shapes = {{3, 5}, {3, 5}, {5, 3}, {3, 5}, {}, {5, 3}, {7, 2}, {3, 5}};
    REQUIRE(table.size() == shapes.size());
    const st::header_table copy = table;  // a copy keeps every shape
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        CAPTURE(i);
        CHECK(std::vector<std::uint64_t>(table[i].shape.begin(), table[i].shape.end()) == shapes[i]);
        CHECK(std::vector<std::uint64_t>(copy[i].shape.begin(), copy[i].shape.end()) == shapes[i]);
    }
    CHECK(fuzz::outcome(header, 239, st::detail::json_reader::automatic) ==
          fuzz::outcome(header, 239, st::detail::json_reader::nlohmann));
#if SAFETENSORS_DETAIL_SCAN_SSE2
    CHECK(table[3].shape.data() == table[1].shape.data());
    CHECK(table[5].shape.data() == table[2].shape.data());
    CHECK(table[7].shape.data() != table[1].shape.data());  // read again after [7,2] took its place
#endif
}
