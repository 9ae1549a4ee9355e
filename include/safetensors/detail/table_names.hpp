// safetensors-hpp: the name lists of a tensor table (a file's header, a sharded index), shared
// by file::keys() and sharded_file::keys().
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace safetensors::detail {

// Table: size(), name(i), sorted_indices() (indices in bytewise name order).
template <class Table>
std::vector<std::string_view> names_in_table_order(const Table& table) {
    std::vector<std::string_view> out;
    out.reserve(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) out.push_back(table.name(i));
    return out;
}

template <class Table>
std::vector<std::string_view> names_sorted(const Table& table) {
    std::vector<std::string_view> out;
    out.reserve(table.size());
    for (auto i : table.sorted_indices()) out.push_back(table.name(i));
    return out;
}

} // namespace safetensors::detail
