// safetensors-hpp: the header's __metadata__: string keys and values in the header's order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/inlining.hpp"
#include "detail/merge_sort.hpp"
#include "error.hpp"

namespace safetensors {

// Ordered string-to-string map with unique keys. Keeps insertion (header) order, which the
// writer reproduces, and answers lookups in O(log n) through a sorted index.
class metadata_map {
public:
    using value_type = std::pair<std::string, std::string>;
    using const_iterator = std::vector<value_type>::const_iterator;

    metadata_map() = default;
    metadata_map(std::initializer_list<value_type> items) {
        for (const auto& item : items) insert(item.first, item.second);
    }

    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    const_iterator begin() const noexcept { return items_.begin(); }
    const_iterator end() const noexcept { return items_.end(); }

    bool contains(std::string_view key) const noexcept { return position(key).second; }

    std::optional<std::string_view> find(std::string_view key) const noexcept {
        auto [at, found] = position(key);
        if (!found) return std::nullopt;
        return std::string_view(items_[sorted_[at]].second);
    }

    const std::string& at(std::string_view key) const {
        auto [at, found] = position(key);
        if (!found) detail::throw_error(errc::out_of_range, "no metadata key " + detail::quote(key));
        return items_[sorted_[at]].second;
    }

    // Adds key = value at the end. Returns false (and changes nothing) if key exists.
    bool insert(std::string key, std::string value) {
        auto [at, found] = position(key);
        if (found) return false;
        sorted_.insert(sorted_.begin() + static_cast<std::ptrdiff_t>(at), detail::narrow<std::uint32_t>(items_.size()));
        items_.emplace_back(std::move(key), std::move(value));
        return true;
    }

    // Sets key = value: replaces the value in place if key exists, else appends.
    void set(std::string key, std::string value) {
        auto [at, found] = position(key);
        if (found) {
            items_[sorted_[at]].second = std::move(value);
            return;
        }
        insert(std::move(key), std::move(value));
    }

    // Removes key, keeping the order of the others. Returns whether it was there.
    bool erase(std::string_view key) {
        auto [at, found] = position(key);
        if (!found) return false;
        std::uint32_t removed = sorted_[at];
        items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(removed));
        sorted_.erase(sorted_.begin() + static_cast<std::ptrdiff_t>(at));
        for (auto& index : sorted_)
            if (index > removed) --index;
        return true;
    }

    friend bool operator==(const metadata_map& a, const metadata_map& b) { return a.items_ == b.items_; }
    friend bool operator!=(const metadata_map& a, const metadata_map& b) { return !(a == b); }

    // For the header parser: append many pairs, then check for duplicates once (O(n log n)
    // instead of O(n^2) inserts). Returns the index of a duplicated key, or size() if none.
    void append_unchecked(std::string key, std::string value) { items_.emplace_back(std::move(key), std::move(value)); }
    SAFETENSORS_DETAIL_HOT std::size_t build_index() {
        sorted_.resize(items_.size());
        for (std::size_t i = 0; i < items_.size(); ++i) sorted_[i] = detail::narrow<std::uint32_t>(i);
        detail::merge_sort(sorted_.data(), sorted_.data() + sorted_.size(),
                           [this](std::uint32_t a, std::uint32_t b) { return items_[a].first < items_[b].first; });
        for (std::size_t i = 1; i < sorted_.size(); ++i)
            if (items_[sorted_[i - 1]].first == items_[sorted_[i]].first) return sorted_[i];
        return items_.size();
    }

private:
    std::pair<std::size_t, bool> position(std::string_view key) const noexcept {
        auto it = std::lower_bound(sorted_.begin(), sorted_.end(), key,
                                   [this](std::uint32_t index, std::string_view k) { return items_[index].first < k; });
        auto at = static_cast<std::size_t>(it - sorted_.begin());
        return {at, it != sorted_.end() && items_[*it].first == key};
    }

    std::vector<value_type> items_;
    std::vector<std::uint32_t> sorted_;  // indices into items_, by key
};

} // namespace safetensors
