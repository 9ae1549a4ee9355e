// safetensors-hpp: the library's one sort, for its tables: a header's offsets and names, an
// index's names and shards, metadata keys, a write's tensor names.
#pragma once

#include <cstddef>
#include <vector>

namespace safetensors::detail {

// Sorts [first, last) by less, keeping equal items in their order (stable); one pass when they
// are in order already, as they usually are. A merge sort of its own rather than std::sort or
// std::stable_sort: each of those instantiates a dozen helper templates per comparator, about
// 1 MB of compiler memory per caller (compile cost, issue 16); this is one small function.
template <class T, class Less>
void merge_sort(T* first, T* last, Less less) {
    const auto n = static_cast<std::size_t>(last - first);
    std::size_t sorted = 1;
    while (sorted < n && !less(first[sorted], first[sorted - 1])) ++sorted;
    if (sorted >= n) return;
    std::vector<T> buffer(n);
    T* from = first;
    T* to = buffer.data();
    for (std::size_t width = 1; width < n; width *= 2) {  // merges neighbouring runs of width
        for (std::size_t low = 0; low < n; low += 2 * width) {
            const std::size_t mid = low + width < n ? low + width : n;
            const std::size_t high = low + 2 * width < n ? low + 2 * width : n;
            std::size_t a = low, b = mid, out = low;
            while (a < mid && b < high) to[out++] = less(from[b], from[a]) ? from[b++] : from[a++];
            while (a < mid) to[out++] = from[a++];
            while (b < high) to[out++] = from[b++];
        }
        T* swap = from;
        from = to;
        to = swap;
    }
    if (from != first)
        for (std::size_t i = 0; i < n; ++i) first[i] = from[i];
}

} // namespace safetensors::detail
