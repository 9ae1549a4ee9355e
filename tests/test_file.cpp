// The file object, views, owned tensors, sources and opening special files.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <complex>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "support/bytes.hpp"
#include "support/errors.hpp"
#include "support/platform.hpp"
#include "support/temp_dir.hpp"

using safetensors::errc;
using test_support::data_path;
using test_support::error_of;
using test_support::temp_dir;

namespace {

std::string all_dtypes_path() { return data_path("reference/valid/all_dtypes.safetensors"); }

// Opening path fails with code; returns the message.
std::string open_error(const std::string& path, errc code) {
    auto r = safetensors::try_open(path);
    REQUIRE(!r);
    CHECK(r.error().code() == code);
    return r.error().message();
}


} // namespace

TEST_CASE("keys in file order and sorted, metadata in header order") {
    auto f = safetensors::open(data_path("reference/malformed/out_of_order_in_json_ok.safetensors"));
    CHECK(f.size() == 2);
    auto lora = safetensors::open(data_path("reference/valid/lora_metadata.safetensors"));
    auto keys = lora.keys();
    auto sorted = lora.sorted_keys();
    CHECK(std::is_sorted(sorted.begin(), sorted.end()));
    CHECK(std::is_permutation(keys.begin(), keys.end(), sorted.begin()));
    REQUIRE(lora.metadata() != nullptr);
    std::vector<std::string> meta_keys;
    for (const auto& kv : *lora.metadata()) meta_keys.push_back(kv.first);
    // The order the header lists them in, not sorted.
    CHECK(meta_keys.front() == "ss_bucket_info");
    CHECK(meta_keys.back() == "ss_dataset_dirs");
    CHECK(lora.metadata()->at("ss_network_dim") == "4");
    CHECK(lora.metadata()->find("empty") == std::optional<std::string_view>(""));
    CHECK(!lora.metadata()->find("missing"));
}

TEST_CASE("lookup: tensor, find, contains, operator[], tensor_at, iteration") {
    auto f = safetensors::open(all_dtypes_path());
    CHECK(f.contains("scalar_f32"));
    CHECK(!f.contains("nope"));
    CHECK(f.find("nope") == std::nullopt);
    CHECK(f.find("scalar_f32")->name() == "scalar_f32");
    CHECK(f["scalar_i64"].dtype() == safetensors::dtype::I64);
    auto missing = error_of([&] { (void)f.tensor("no\x1b[31m"); });
    CHECK(missing.code == errc::tensor_not_found);
    CHECK(missing.message == "no tensor named \"no\\x1b[31m\" in \"" + all_dtypes_path() + "\"");
    CHECK(error_of([&] { (void)f.tensor_at(f.size()); }).code == errc::out_of_range);
    std::size_t n = 0;
    std::uint64_t previous_end = 0;
    for (auto t : f) {
        CHECK(t.data_offsets().first == previous_end);
        previous_end = t.data_offsets().second;
        CHECK(t.name() == f.tensor_at(n).name());
        ++n;
    }
    CHECK(n == f.size());
    CHECK(previous_end == f.header().data_size());
}

TEST_CASE("views: shape, sizes, offsets, bytes, and shared ownership") {
    std::optional<safetensors::tensor_view> kept;
    {
        auto f = safetensors::open(all_dtypes_path());
        auto t = f.tensor("rand_float32_3x4x5");
        CHECK(t.rank() == 3);
        CHECK(t.shape()[0] == 3);
        CHECK(t.element_count() == 60);
        CHECK(t.byte_size() == 240);
        CHECK(t.source_offset() == f.header().data_offset() + t.data_offsets().first);
        CHECK(t.bytes().size() == 240);
        CHECK(t.info().name == "rand_float32_3x4x5");
        kept = t;
    }
    // The file object is gone; the view still owns the mapping.
    CHECK(kept->as<float>().size() == 60);
    CHECK(kept->source().use_count() >= 1);
    auto token = kept->keep_alive();
    CHECK(token != nullptr);
}

TEST_CASE("typed access checks dtype and alignment") {
    auto f = safetensors::open(all_dtypes_path());
    auto t = f.tensor("scalar_f32");
    CHECK(t.as<float>().size() == 1);
    CHECK(t.to_vector<float>().size() == 1);
    auto wrong = error_of([&] { (void)t.as<double>(); });
    CHECK(wrong.code == errc::dtype_mismatch);
    CHECK(wrong.message == "tensor \"scalar_f32\" has dtype F32, which cannot be read as double");
    CHECK(error_of([&] { (void)t.as<std::int32_t>(); }).message ==
          "tensor \"scalar_f32\" has dtype F32, which cannot be read as int32_t");
    CHECK(f.tensor("mask_bool_2x5").as<std::uint8_t>().size() == 10);
    CHECK(f.tensor("rand_bfloat16_3x4x5").as<std::uint16_t>().size() == 60);
    CHECK(f.tensor("special_float8_e4m3fn").as<std::uint8_t>().size() > 0);
    CHECK(f.tensor("rand_uint64_4x2").as<std::uint64_t>().size() == 8);
    // A span from as() borrows from its view: keep the view (or file) alive while using it.
    auto complex_view = safetensors::open(data_path("reference/valid/complex64.safetensors")).tensor("c");
    auto c = complex_view.as<std::complex<float>>();
    CHECK(c[1] == std::complex<float>(-3.5f, 0.25f));

    float one = 0;
    CHECK(error_of([&] { t.copy_to(&one, 0); }).code == errc::out_of_range);
    t.copy_to(&one, 1);
    CHECK(one == t.as<float>()[0]);

    SUBCASE("misaligned data: as<T> refuses, copy_to works") {
        // N = 57 puts the data section at offset 65.
        std::string json = "{\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        json += std::string(57 - json.size(), ' ');
        auto bytes = test_support::make_file(json, std::string("\0\0\x80?\0\0\0@", 8));
        auto g = safetensors::file::from_bytes(bytes);
        auto v = g.tensor("f");
        REQUIRE(reinterpret_cast<std::uintptr_t>(v.data()) % 4 != 0);
        auto e = error_of([&] { (void)v.as<float>(); });
        CHECK(e.code == errc::misaligned_data);
        CHECK(e.message == "tensor \"f\": data at file offset 65 is not aligned to 4 bytes for float; use copy_to() instead");
        CHECK(v.to_vector<float>() == std::vector<float>{1.0f, 2.0f});
        CHECK(v.element(1) == 2.0);
        CHECK(error_of([&] { (void)v.element(2); }).code == errc::out_of_range);
        std::byte b[2];
        v.read_bytes(6, b, 2);
        CHECK(b[1] == std::byte{'@'});
        CHECK(error_of([&] { v.read_bytes(7, b, 2); }).code == errc::out_of_range);
    }
}

TEST_CASE("copy_to a span: typed elements, raw bytes, and a destination too small") {
    auto f = safetensors::open(all_dtypes_path());
    auto t = f.tensor("rand_float32_3x4x5");
    std::vector<float> values(61, -1.0f);  // one more than needed: the rest stays untouched
    t.copy_to(safetensors::span<float>(values));
    CHECK(std::equal(values.begin(), values.begin() + 60, t.to_vector<float>().begin()));
    CHECK(values[60] == -1.0f);
    auto e = error_of([&] { t.copy_to(safetensors::span<float>(values.data(), 59)); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"rand_float32_3x4x5\" has 60 elements, destination holds 59");
    e = error_of([&] { std::vector<double> d(60); t.copy_to(safetensors::span<double>(d)); });
    CHECK(e.code == errc::dtype_mismatch);
    CHECK(e.message == "tensor \"rand_float32_3x4x5\" has dtype F32, which cannot be read as double");

    // Raw bytes, whatever the dtype (a std::vector<std::byte> converts to the span).
    std::vector<std::byte> raw(240);
    t.copy_to(raw);
    CHECK(std::equal(raw.begin(), raw.end(), t.bytes().begin()));
    e = error_of([&] { t.copy_to(safetensors::span<std::byte>(raw.data(), 239)); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"rand_float32_3x4x5\" has 240 bytes, destination holds 239");
    auto empty = f.tensor("empty_f32_0x3");
    empty.copy_to(safetensors::span<std::byte>());
    empty.copy_to(safetensors::span<float>());
}

TEST_CASE("owned tensors and load()") {
    auto loaded = safetensors::load(all_dtypes_path());
    auto f = safetensors::open(all_dtypes_path());
    CHECK(loaded.size() == f.size());
    for (auto view : f) {
        const auto& t = loaded.at(std::string(view.name()));
        CHECK(t.dtype() == view.dtype());
        CHECK(t.shape() == view.shape());
        REQUIRE(t.byte_size() == view.byte_size());
        CHECK(std::equal(t.bytes().begin(), t.bytes().end(), view.bytes().begin()));
        CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    }
    CHECK(loaded.begin()->first <= std::prev(loaded.end())->first);

    safetensors::tensor zeros("z", safetensors::dtype::F32, {2, 3});
    CHECK(zeros.byte_size() == 24);
    for (float v : zeros.as<float>()) CHECK(v == 0.0f);
    zeros.as<float>()[4] = 5.0f;
    CHECK(zeros.clone().element(4) == 5.0);
    float data[2] = {1, 2};
    auto bad = error_of([&] { safetensors::tensor("t", safetensors::dtype::F32, {3}, data, sizeof data); });
    CHECK(bad.code == errc::invalid_tensor);
    CHECK(bad.message == "tensor \"t\": 8 bytes given, dtype F32 and its shape need 12");
    CHECK(error_of([&] { safetensors::tensor("t", safetensors::dtype::F4, {3}); }).code == errc::misaligned_sub_byte);
    CHECK(error_of([&] { safetensors::tensor("t", safetensors::dtype::F64, {UINT64_MAX, 2}); }).code == errc::shape_overflow);
}

TEST_CASE("sources: map, read, borrowed and owned buffers see the same bytes") {
    auto bytes = test_support::read_all(all_dtypes_path());
    auto mapped = safetensors::open(all_dtypes_path());
    auto read = safetensors::open(all_dtypes_path(), {safetensors::open_mode::read});
    safetensors::open_options hinted;
    hinted.advice = safetensors::access_advice::sequential;
    hinted.populate = true;
    auto populated = safetensors::open(all_dtypes_path(), hinted);
    auto borrowed = safetensors::file::from_buffer(bytes.data(), bytes.size());
    auto owned = safetensors::file::from_bytes(bytes);
    for (const auto* g : {&read, &populated, &borrowed, &owned}) {
        CHECK(g->size() == mapped.size());
        for (auto t : mapped)
            CHECK(std::equal(t.bytes().begin(), t.bytes().end(), g->tensor(t.name()).bytes().begin()));
    }
    // Borrowed means no copy: views point into the caller's buffer.
    CHECK(borrowed.tensor_at(0).data() == bytes.data() + borrowed.header().data_offset());
    CHECK(borrowed.source()->description() == "buffer");

    auto src = mapped.source();
    std::byte out[8];
    auto past = error_of([&] { src->read_at(src->size() - 4, out, 8); });
    CHECK(past.code == errc::short_read);
    CHECK(past.message == "read of 8 bytes at offset " + std::to_string(src->size() - 4) + " is past the end of \"" +
                              all_dtypes_path() + "\" (" + std::to_string(src->size()) + " bytes)");
    CHECK(error_of([&] { src->read_at(UINT64_MAX, out, 8); }).code == errc::short_read);
    CHECK(error_of([] { (void)safetensors::borrow_buffer(nullptr, 4); }).code == errc::invalid_argument);
    CHECK(safetensors::borrow_buffer(nullptr, 0)->size() == 0);
}

TEST_CASE("errors: exception type, codes, std::error_code, result") {
    auto r = safetensors::try_open("/nonexistent/model.safetensors");
    REQUIRE(!r);
    CHECK(r.error().code() == errc::file_not_found);
    CHECK(r.error().message() == "cannot open \"/nonexistent/model.safetensors\": No such file or directory");
    CHECK(r.error().error_code() == errc::file_not_found);
    CHECK(r.error().error_code().category().name() == std::string("safetensors"));
    try {
        (void)r.value();
        FAIL("value() of a failed result must throw");
    } catch (const safetensors::error& e) {
        CHECK(e.code() == errc::file_not_found);
        CHECK(e.id() == 101);
        CHECK(std::string(e.what()) == "[safetensors.error.101] " + e.message());
        const std::runtime_error& base = e;
        CHECK(std::string(base.what()).find("No such file") != std::string::npos);
    }
    auto ok = safetensors::try_open(all_dtypes_path());
    REQUIRE(ok);
    CHECK(ok->size() == 29);
    CHECK(ok.error().code() == errc::ok);
    CHECK(ok.error().message().empty());
    CHECK(!ok.error().system_code());
    CHECK(safetensors::make_error_code(errc::invalid_json).message() == "invalid header");
}

TEST_CASE("errors: path() and system_code() say which file and which OS error") {
    const std::string missing = "/nonexistent/model.safetensors";
    auto r = safetensors::try_open(missing);
    REQUIRE(!r);
    CHECK(r.error().path() == missing);
    CHECK(r.error().system_code() == std::errc::no_such_file_or_directory);
    CHECK(r.error().system_code().category() == std::generic_category());
    const auto e = error_of([&] { (void)safetensors::open(missing); });
    CHECK(e.path == missing);
    CHECK(e.system_code == std::errc::no_such_file_or_directory);
    // A copy shares its texts and never throws.
    static_assert(std::is_nothrow_copy_constructible<safetensors::error>::value, "errors copy without throwing");
    // An error about the file's contents names it too, with no OS error.
    const std::string path = data_path("reference/malformed/overlap.safetensors");
    r = safetensors::try_open(path);
    REQUIRE(!r);
    CHECK(r.error().path() == path);
    CHECK(r.error().message().rfind("\"" + path + "\": invalid offset for tensor \"b\"", 0) == 0);
    CHECK(!r.error().system_code());
    // Buffers have no path.
    const std::vector<std::byte> seven(7);
    CHECK(error_of([&] { (void)safetensors::file::from_buffer(seven.data(), seven.size()); }).path.empty());
}

TEST_CASE("errors: a text file is \"not a safetensors file\", a short data section is \"truncated\"") {
    // This repository's README: its first 8 bytes read as an absurd length.
    const std::string readme = data_path("../../README.md");
    auto r = safetensors::try_open(readme);
    REQUIRE(!r);
    CHECK(r.error().message().find("not a safetensors file (it starts with \"") != std::string::npos);
    CHECK(r.error().message().find("\"" + readme + "\"") != std::string::npos);
    CHECK(r.error().path() == readme);
    // The same from a buffer, exactly: an HTML error page saved under a .safetensors name.
    const std::string html = "<!DOCTYPE html><html>404</html>";
    const auto e = error_of([&] { (void)safetensors::file::from_buffer(html.data(), html.size()); });
    CHECK(e.code == errc::header_too_large);
    CHECK(e.message == "not a safetensors file (it starts with \"<!DOCTYP\", not an 8-byte header length)");

    // A valid file cut short in its data section.
    temp_dir dir;
    auto bytes = test_support::read_all(all_dtypes_path());
    bytes.resize(bytes.size() - 100);
    const std::string cut = dir.file("cut.safetensors");
    test_support::write_all(cut, bytes);
    r = safetensors::try_open(cut);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::incomplete_coverage);
    CHECK(r.error().path() == cut);
    CHECK(r.error().message().rfind("\"" + cut + "\": file is truncated: 100 bytes missing (the tensors need a ", 0) == 0);
}

TEST_CASE("names in messages are escaped and cut") {
    using safetensors::detail::quote;
    CHECK(quote("a\"b\\c\n\t\r\x01\x7f") == "\"a\\\"b\\\\c\\n\\t\\r\\x01\\x7f\"");
    CHECK(quote("\xC2\x9B" "2J") == "\"\\u009b2J\"");  // C1 CSI
    CHECK(quote("\xC3\xA9") == "\"\xC3\xA9\"");          // printable UTF-8 stays
    std::string long_name(1000, 'x');
    CHECK(quote(long_name) == "\"" + std::string(200, 'x') + "...\"");
}

TEST_CASE("metadata_map keeps insertion order and unique keys") {
    safetensors::metadata_map m{{"b", "1"}, {"a", "2"}};
    CHECK(!m.insert("a", "3"));
    m.set("a", "4");
    m.set("c", "5");
    std::vector<std::string> order;
    for (const auto& kv : m) order.push_back(kv.first + "=" + kv.second);
    CHECK(order == std::vector<std::string>{"b=1", "a=4", "c=5"});
    CHECK(m.erase("b"));
    CHECK(!m.erase("b"));
    CHECK(m.at("c") == "5");
    CHECK(m.size() == 2);
    CHECK(error_of([&] { (void)m.at("b"); }).code == errc::out_of_range);
}

TEST_CASE("concurrent lookups and reads on one file") {
    auto f = safetensors::open(data_path("reference/valid/many_tensors.safetensors"));
    auto keys = f.keys();
    std::vector<std::thread> threads;
    std::vector<std::size_t> found(4, 0);
    for (std::size_t k = 0; k < 4; ++k)
        threads.emplace_back([&, k] {
            for (auto name : keys) {
                auto t = f.find(name);
                if (t && t->byte_size() == t->bytes().size()) ++found[k];
            }
        });
    for (auto& t : threads) t.join();
    for (auto n : found) CHECK(n == keys.size());
}

TEST_CASE("opening a directory, an empty, a short or a lying file gives clear errors") {
    temp_dir dir;
    CHECK(open_error(dir.str(), errc::not_regular_file) == "\"" + dir.str() + "\" is a directory");
    std::string empty = dir.file("empty");
    test_support::write_all(empty, {});
    open_error(empty, errc::header_too_small);
    std::string seven = dir.file("seven");
    test_support::write_all(seven, std::vector<std::byte>(7));
    open_error(seven, errc::header_too_small);
    // A length prefix claiming 100,000,000 bytes on a small file.
    auto claim = test_support::make_file("{}");
    claim[0] = std::byte{0x00};
    claim[1] = std::byte{0xe1};
    claim[2] = std::byte{0xf5};
    claim[3] = std::byte{0x05};  // 0x05f5e100 = 100,000,000
    std::string liar = dir.file("liar");
    test_support::write_all(liar, claim);
    open_error(liar, errc::invalid_header_length);
}

TEST_CASE("opening a FIFO or a device gives a clear error and never blocks" * POSIX_ONLY("FIFOs and /dev/zero")) {
#if !defined(_WIN32)
    temp_dir dir;
    std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(open_error(fifo, errc::not_regular_file) == "\"" + fifo + "\" is not a regular file");
    CHECK(open_error(fifo, errc::not_regular_file) == "\"" + fifo + "\" is not a regular file");  // read mode: same
    open_error("/dev/zero", errc::not_regular_file);
#endif
}

TEST_CASE("read mode keeps its bytes when the file shrinks; read_at reports the short read" *
          POSIX_ONLY("truncates a mapped file, which Windows refuses (ERROR_USER_MAPPED_FILE)")) {
#if !defined(_WIN32)
    temp_dir dir;
    std::string path = dir.file("shrinks.safetensors");
    test_support::write_all(path, test_support::read_all(all_dtypes_path()));
    auto in_memory = safetensors::open(path, {safetensors::open_mode::read});
    auto mapped = safetensors::open(path);
    REQUIRE(::truncate(path.c_str(), 100) == 0);
    auto big = in_memory.tensor("big_f32_64x64");
    CHECK(big.as<float>().size() == 4096);  // private memory: unaffected
    auto mapped_big = mapped.tensor("big_f32_64x64");
    std::vector<float> out(4096);
    // Through the file descriptor: an error, not a SIGBUS.
    auto e = error_of([&] { mapped_big.copy_to(out.data(), out.size()); });
    CHECK(e.code == errc::short_read);
    CHECK(e.message.find("unexpected end of file in \"" + path + "\"") == 0);
    CHECK(error_of([&] { (void)safetensors::tensor::copy_of(mapped_big); }).code == errc::short_read);
#endif
}

TEST_CASE("opening a sparse multi-GiB file touches no data pages" * POSIX_ONLY("counts page faults with getrusage")) {
#if !defined(_WIN32)
    temp_dir dir;
    std::string path = dir.file("sparse.safetensors");
    const std::uint64_t data_size = std::uint64_t{6} << 30;  // 6 GiB of holes
    std::string json = "{\"w\":{\"dtype\":\"U8\",\"shape\":[" + std::to_string(data_size) +
                       "],\"data_offsets\":[0," + std::to_string(data_size) + "]}}";
    json += std::string((8 - json.size() % 8) % 8, ' ');
    test_support::write_all(path, test_support::make_file(json));
#if SIZE_MAX <= UINT32_MAX
    // 32-bit host: 6 GiB cannot be mapped or read, so open refuses the file (with a 32-bit
    // off_t, open itself fails with EOVERFLOW). truncate64 makes the file all the same.
    REQUIRE(::truncate64(path.c_str(), static_cast<off64_t>(8 + json.size() + data_size)) == 0);
    const auto refused = safetensors::try_open(path);
    REQUIRE(!refused);
    CHECK(refused.error().code() == errc::file_too_large);
    CHECK(refused.error().message() ==
          (sizeof(off_t) < 8 ? "cannot open \"" + path + "\": Value too large for defined data type"
                             : "\"" + path + "\" (" + std::to_string(8 + json.size() + data_size) +
                                   " bytes) does not fit in the address space"));
    return;
#endif
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(8 + json.size() + data_size)) == 0);

    auto faults = [] {
        struct rusage usage {};
        ::getrusage(RUSAGE_SELF, &usage);
        return usage.ru_minflt + usage.ru_majflt;
    };
    auto before = faults();
    auto f = safetensors::open(path);
    auto w = f.tensor("w");
    auto after = faults();
    CHECK(w.byte_size() == data_size);
    // Touching the data would cost one fault per page: 1.5 million of them. Allocation
    // and sanitizer bookkeeping cost a few; allow a small fixed number.
    CHECK(after - before < 200);
    MESSAGE("page faults while opening a 6 GiB sparse file: " << (after - before));
#endif
}
