// Compile-only coverage of the public API, shared by the cross-target checks (windows.cpp,
// m32.cpp). Every template the library offers is instantiated here for the element types it
// supports, so a platform difference (size_t width, wchar_t, long vs long long, Windows
// headers) fails at compile time. Nothing here is run.
#pragma once

#include <safetensors/safetensors.hpp>

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace safetensors_compile_check {

template <class T>
inline double use_typed(const safetensors::tensor_view& view, safetensors::tensor& owned) {
    safetensors::span<const T> values = view.template as<T>();
    std::vector<T> copy = view.template to_vector<T>();
    std::vector<T> buffer(copy.size());
    view.template copy_to<T>(buffer.data(), buffer.size());
    view.copy_to(safetensors::span<T>(buffer));
    safetensors::span<T> writable = owned.template as<T>();
    safetensors::span<const T> readable = static_cast<const safetensors::tensor&>(owned).template as<T>();
    return static_cast<double>(values.size() + copy.size() + writable.size() + readable.size());
}

inline double use_api(const std::string& path) {
    double total = 0;

    // dtype helpers
    for (safetensors::dtype t : safetensors::all_dtypes) total += static_cast<double>(safetensors::to_string(t).size());
    std::vector<std::uint64_t> shape{2, 3};
    total += static_cast<double>(
        safetensors::byte_size(safetensors::dtype::F32, safetensors::span<const std::uint64_t>(shape)));

    // opening: throwing and non-throwing
    safetensors::open_options options;
    safetensors::file f = safetensors::open(path, options);
    safetensors::result<safetensors::file> maybe = safetensors::try_open(path);
    if (!maybe) total += static_cast<double>(maybe.error().code() == safetensors::errc::file_not_found);
    std::vector<std::byte> bytes(8);
    auto from_buffer = safetensors::try_open_buffer(bytes.data(), bytes.size());
    total += from_buffer.ok() ? 1 : 0;
    safetensors::file owned_file = safetensors::file::from_bytes(bytes);
    total += static_cast<double>(owned_file.size());

    // keys, lookup, metadata, iteration
    total += static_cast<double>(f.size() + f.keys().size() + f.sorted_keys().size());
    if (f.contains("x")) total += f["x"].element(0);
    if (auto v = f.find("y")) total += static_cast<double>(v->byte_size());
    if (const safetensors::metadata_map* meta = f.metadata()) {
        for (const auto& item : *meta) total += static_cast<double>(item.first.size() + item.second.size());
        if (auto value = meta->find("format")) total += static_cast<double>(value->size());
    }
    for (safetensors::tensor_view view : f) {
        total += static_cast<double>(view.name().size() + view.rank() + view.element_count());
        total += static_cast<double>(view.data_offsets().second - view.data_offsets().first);
        total += static_cast<double>(view.bytes().size());
        total += static_cast<double>(safetensors::to_string(view.dtype()).size());
        std::vector<std::byte> raw(view.bytes().size());
        view.copy_to(raw);
        safetensors::tensor owned = safetensors::tensor::copy_of(view);
        total += use_typed<float>(view, owned) + use_typed<double>(view, owned);
        total += use_typed<std::int8_t>(view, owned) + use_typed<std::uint8_t>(view, owned);
        total += use_typed<std::int16_t>(view, owned) + use_typed<std::uint16_t>(view, owned);
        total += use_typed<std::int32_t>(view, owned) + use_typed<std::uint32_t>(view, owned);
        total += use_typed<std::int64_t>(view, owned) + use_typed<std::uint64_t>(view, owned);
        total += use_typed<std::complex<float>>(view, owned);
    }

    // random-access iteration, dtype hints
    total += static_cast<double>(f.end() - f.begin()) + static_cast<double>((f.begin() + 1)[-1].rank());
    total += static_cast<double>(safetensors::dtype_from_alias("float32").has_value());

    // owned tensors
    safetensors::tensor_map all = safetensors::load(f);
    for (const auto& [name, t] : all) total += static_cast<double>(name.size() + t.byte_size());
    safetensors::tensor zeros("z", safetensors::dtype::BF16, {4, 4});
    total += zeros.element(0);

    // sharded checkpoints, conversion
    safetensors::sharded_file model = safetensors::open_sharded(path);
    for (auto name : model.sorted_keys()) total += static_cast<double>(model.tensor(name).byte_size());
    total += static_cast<double>(model.shard_count() + model.total_size().value_or(0));
    std::vector<float> floats = safetensors::to_f32(f.tensor("x"));
    total += static_cast<double>(floats.size()) + (safetensors::best_convert_path() == safetensors::convert_path::scalar);
    safetensors::tensor half = safetensors::convert_tensor(f.tensor("x"), safetensors::dtype::BF16);
    total += static_cast<double>(half.byte_size());
    safetensors::tensor_map loaded = safetensors::load(path, {}, safetensors::load_options{2});
    total += static_cast<double>(loaded.size());

    // errors
    try {
        safetensors::open(path);
    } catch (const safetensors::error& e) {
        total += static_cast<double>(e.id()) + static_cast<double>(e.error_code().value());
        total += static_cast<double>(std::string(e.what()).size() + e.message().size());
    }
    return total + static_cast<double>(SAFETENSORS_VERSION);
}

}  // namespace safetensors_compile_check
