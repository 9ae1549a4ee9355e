// safetensors-hpp: "did you mean" for a tensor name that is not there: the closest name within
// 2 edits. Names come from untrusted files (100,000 of them in a 100 MB header), so every
// comparison is bounded: a name whose length differs by more than the bound is skipped, the
// dynamic program fills only the cells within the bound of the diagonal and stops at the
// first row whose cells all exceed it. A search is O(total bytes of the names) and allocates
// nothing. Only the throwing lookups call it, never find() or contains().
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace safetensors::detail {

// How many edits away a name may be to be suggested.
inline constexpr std::size_t suggestion_distance = 2;
// The largest bound bounded_edit_distance takes (it sizes the band on the stack).
inline constexpr std::size_t max_bounded_distance = 8;

// The Levenshtein distance of a and b (insertions, deletions and substitutions; swapping two
// neighbours is two edits) when it is at most max_distance, else max_distance + 1. A
// max_distance above max_bounded_distance counts as max_bounded_distance.
constexpr std::size_t bounded_edit_distance(std::string_view a, std::string_view b, std::size_t max_distance) noexcept {
    const std::size_t k = max_distance < max_bounded_distance ? max_distance : max_bounded_distance;
    const std::size_t over = k + 1;  // every cell is capped here, so nothing grows
    const std::size_t n = a.size(), m = b.size();
    if ((n > m ? n - m : m - n) > k) return over;
    // Cell d of row i is the distance of a[0, i) and b[0, j) for column j = i - k + d; cells
    // outside the table count as over. Rows alternate between the two arrays.
    const std::size_t width = 2 * k + 1;
    std::size_t rows[2][2 * max_bounded_distance + 1] = {};
    for (std::size_t d = 0; d < width; ++d) rows[0][d] = d >= k && d - k <= m ? d - k : over;
    for (std::size_t i = 1; i <= n; ++i) {
        const std::size_t* prev = rows[(i - 1) % 2];
        std::size_t* cur = rows[i % 2];
        std::size_t best = over;
        for (std::size_t d = 0; d < width; ++d) {
            if (i + d < k || i + d - k > m) {
                cur[d] = over;
                continue;
            }
            const std::size_t j = i + d - k;
            std::size_t v = i;  // column 0: delete all of a[0, i)
            if (j > 0) {
                v = prev[d] + (a[i - 1] == b[j - 1] ? std::size_t{0} : std::size_t{1});  // from (i-1, j-1)
                if (d + 1 < width && prev[d + 1] + 1 < v) v = prev[d + 1] + 1;             // from (i-1, j)
                if (d > 0 && cur[d - 1] + 1 < v) v = cur[d - 1] + 1;                       // from (i, j-1)
            }
            cur[d] = v < over ? v : over;
            if (cur[d] < best) best = cur[d];
        }
        if (best == over) return over;  // every path to the end crosses this row
    }
    return rows[n % 2][m + k - n];  // column m of row n
}

// The name closest to query within max_distance edits, and among equally close names the
// first that name_at gives (for k = 0 .. count - 1): callers give names in sorted order, so the
// answer does not depend on the file's order. nullopt when no name is that close.
template <class NameAt>
std::optional<std::string_view> closest_name(std::string_view query, std::size_t count, NameAt&& name_at,
                                             std::size_t max_distance = suggestion_distance) {
    std::optional<std::string_view> best;
    std::size_t limit = max_distance < max_bounded_distance ? max_distance : max_bounded_distance;
    for (std::size_t k = 0; k < count; ++k) {
        const std::string_view name = name_at(k);
        const std::size_t d = bounded_edit_distance(query, name, limit);
        if (d > limit) continue;
        best = name;
        if (d == 0) break;
        limit = d - 1;  // only a closer name replaces it
    }
    return best;
}

// Table: name(i) and sorted_indices() (header_table, index_table). Ties go to the bytewise first.
template <class Table>
std::optional<std::string_view> closest_name_in(const Table& table, std::string_view query) {
    const auto sorted = table.sorted_indices();
    return closest_name(query, sorted.size(), [&](std::size_t k) { return table.name(sorted[k]); });
}

// " (did you mean \"name\"?)" to end a message, or "" without a suggestion.
inline std::string did_you_mean(const std::optional<std::string_view>& name) {
    return name ? " (did you mean " + quote(*name) + "?)" : std::string();
}

} // namespace safetensors::detail
