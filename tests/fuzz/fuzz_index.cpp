// libFuzzer target: arbitrary bytes as the text of a model.safetensors.index.json, parsed in
// memory by safetensors::parse_index (no file is touched). Every input must either parse or
// throw safetensors::error with an index code; a parsed index must keep its invariants.
#include <safetensors/sharded.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

[[noreturn]] void broken() { std::abort(); }

void check(const safetensors::index_table& t) {
    const auto sorted = t.sorted_indices();
    if (sorted.size() != t.size()) broken();
    for (std::size_t k = 0; k < sorted.size(); ++k) {
        if (k > 0 && !(t.name(sorted[k - 1]) < t.name(sorted[k]))) broken();  // sorted, unique
        const auto at = t.find(t.name(sorted[k]));
        if (!at || *at != sorted[k]) broken();
    }
    for (std::size_t i = 0; i < t.size(); ++i)
        if (t.shard_of(i) >= t.shards().size()) broken();
    for (const auto& shard : t.shards())
        if (safetensors::detail::unsafe_shard_name_reason(shard) != nullptr) broken();
    if (t.total_size() && (!t.metadata_json() || !t.metadata())) broken();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        check(safetensors::parse_index(std::string_view(reinterpret_cast<const char*>(data), size)));
    } catch (const safetensors::error& e) {
        if (e.code() != safetensors::errc::invalid_index && e.code() != safetensors::errc::unsafe_shard_name) broken();
    }
    return 0;
}
