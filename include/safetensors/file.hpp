// safetensors-hpp: an opened safetensors file: keys, metadata, lookup, iteration, views.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "header.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "view.hpp"
#include "detail/closest_name.hpp"
#include "detail/inlining.hpp"
#include "detail/table_names.hpp"
#include "detail/tensor_iterator.hpp"

namespace safetensors {

// The Python safe_open(): a validated header over a source. Copies share the same state.
// Every member is const and safe to call concurrently; nothing is built lazily.
class file {
public:
    // Opens and validates path (UTF-8). Throws safetensors::error.
    // Every error names path (error::path(), and the message).
    static file open(const std::string& path, const open_options& options = {}) {
        return detail::about_path(path, [&] { return from_source(open_source(path, options)); });
    }
    // Parses a file held in a caller's buffer, without copying; the buffer must outlive
    // the file and every view of it.
    static file from_buffer(const void* data, std::size_t size) { return from_source(borrow_buffer(data, size)); }
    // Parses a file whose bytes it takes ownership of.
    static file from_bytes(std::vector<std::byte> bytes) { return from_source(own_buffer(std::move(bytes))); }
    SAFETENSORS_DETAIL_HOT static file from_source(std::shared_ptr<const source> src) {
        if (!src) detail::throw_error(errc::invalid_argument, "null source");
        std::shared_ptr<detail::file_state> state(new detail::file_state());  // not make_shared: compile cost
        state->table = read_header(*src);
        state->src = std::move(src);
        return file(std::move(state));
    }

    // Number of tensors.
    std::size_t size() const noexcept { return table().size(); }
    bool empty() const noexcept { return table().empty(); }

    // Tensor names in file order (ascending data offsets), and sorted bytewise (Python's keys()).
    std::vector<std::string_view> keys() const { return detail::names_in_table_order(table()); }
    std::vector<std::string_view> sorted_keys() const { return detail::names_sorted(table()); }

    bool contains(std::string_view name) const noexcept { return table().find(name).has_value(); }
    std::optional<tensor_view> find(std::string_view name) const noexcept {
        auto index = table().find(name);
        if (!index) return std::nullopt;
        return tensor_view(state_, *index);
    }
    // Throws errc::tensor_not_found, naming the closest name within 2 edits, if any.
    tensor_view tensor(std::string_view name) const {
        auto index = table().find(name);
        if (!index)
            detail::throw_error(errc::tensor_not_found, "no tensor named " + detail::quote(name) + " in " +
                                                            detail::quote(state_->src->description()) +
                                                            detail::did_you_mean(detail::closest_name_in(table(), name)));
        return tensor_view(state_, *index);
    }
    tensor_view operator[](std::string_view name) const { return tensor(name); }
    // The index-th tensor in file order.
    tensor_view tensor_at(std::size_t index) const {
        if (index >= size())
            detail::throw_error(errc::out_of_range, "tensor index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(size()) + " tensors)");
        return tensor_view(state_, index);
    }

    // __metadata__ in header order; null when the header has none.
    const metadata_map* metadata() const noexcept { return table().metadata(); }

    const header_table& header() const noexcept { return table(); }
    const std::shared_ptr<const safetensors::source>& source() const noexcept { return state_->src; }

    // Iterates over tensor_views in file order.
    using iterator = detail::tensor_iterator<file>;
    iterator begin() const { return iterator(*this, 0); }
    iterator end() const { return iterator(*this, size()); }

private:
    explicit file(std::shared_ptr<const detail::file_state> state) : state_(std::move(state)) {}
    const header_table& table() const noexcept { return state_->table; }

    std::shared_ptr<const detail::file_state> state_;
};

// safetensors::open(path): the usual way in. Throws safetensors::error.
inline file open(const std::string& path, const open_options& options = {}) { return file::open(path, options); }

// Non-throwing forms: the result holds the file or the same code and message the
// exception would carry.
inline result<file> try_open(const std::string& path, const open_options& options = {}) noexcept {
    return detail::capture([&] { return file::open(path, options); });
}
inline result<file> try_open_buffer(const void* data, std::size_t size) noexcept {
    return detail::capture([&] { return file::from_buffer(data, size); });
}

} // namespace safetensors

#if SAFETENSORS_DETAIL_RANGES
// A file is a handle: a copy costs O(1) and shares the tensors, and an iterator holds its own
// copy. So it is a view (f | std::views::filter(...) keeps the file alive), and a borrowed
// range (an iterator into a temporary file does not dangle).
template <>
inline constexpr bool std::ranges::enable_view<safetensors::file> = true;
template <>
inline constexpr bool std::ranges::enable_borrowed_range<safetensors::file> = true;
// Not std::ranges::view itself: before P2325 that also asked for a public default constructor.
static_assert(std::ranges::random_access_range<safetensors::file> && std::ranges::sized_range<safetensors::file> &&
              std::ranges::common_range<safetensors::file> && std::ranges::borrowed_range<safetensors::file>);
#endif
