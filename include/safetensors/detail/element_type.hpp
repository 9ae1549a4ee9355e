// safetensors-hpp: which C++ element types stand for which dtypes, for typed reads (as<T>,
// copy_to, to_vector), typed writes (tensor_ref) and dtype deduction.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "../dtype.hpp"
#include "../error.hpp"

namespace safetensors::detail {

// Integers are told apart by signedness and width, not by spelling, so long and long long
// both stand for I64 on LP64 hosts. bool and the character types are not numbers here.
template <class U>
constexpr bool is_number_integer() noexcept {
    return std::is_integral<U>::value && !std::is_same<U, bool>::value && !std::is_same<U, char>::value &&
           !std::is_same<U, wchar_t>::value && !std::is_same<U, char16_t>::value && !std::is_same<U, char32_t>::value;
}

template <class U>
constexpr dtype integer_dtype() noexcept {
    constexpr bool s = std::is_signed<U>::value;
    if constexpr (sizeof(U) == 1) return s ? dtype::I8 : dtype::U8;
    else if constexpr (sizeof(U) == 2) return s ? dtype::I16 : dtype::U16;
    else if constexpr (sizeof(U) == 4) return s ? dtype::I32 : dtype::U32;
    else return s ? dtype::I64 : dtype::U64;
}

// Which C++ element types may read which dtypes. Besides the natural type, the unsigned
// integer of the same width reads the raw codes of float formats without a native type
// (F16, BF16, F8_*), and uint8_t reads BOOL (any byte value is valid in a file).
template <class T>
constexpr bool element_type_matches(dtype d) noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same<U, float>::value) return d == dtype::F32;
    else if constexpr (std::is_same<U, double>::value) return d == dtype::F64;
    else if constexpr (std::is_same<U, std::complex<float>>::value) return d == dtype::C64;
    else if constexpr (is_number_integer<U>() && sizeof(U) <= 8) {
        if (d == integer_dtype<U>()) return true;
        if constexpr (std::is_unsigned<U>::value && sizeof(U) == 1)
            return d == dtype::BOOL || d == dtype::F8_E5M2 || d == dtype::F8_E4M3 || d == dtype::F8_E8M0 ||
                   d == dtype::F8_E4M3FNUZ || d == dtype::F8_E5M2FNUZ;
        else if constexpr (std::is_unsigned<U>::value && sizeof(U) == 2) return d == dtype::F16 || d == dtype::BF16;
        else return false;
    } else return false;
}

// Which element types may be written as which dtypes: what reads them, and bool for BOOL.
// std::byte data is raw bytes and is not checked (the only way to write F4 and F6).
template <class T>
constexpr bool element_type_writes(dtype d) noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same<U, std::byte>::value) return true;
    else if constexpr (std::is_same<U, bool>::value) return d == dtype::BOOL;
    else return element_type_matches<U>(d);
}

// The dtype an element type stands for when none is given.
template <class T>
constexpr dtype deduced_dtype() noexcept {
    using U = std::remove_cv_t<T>;
    static_assert(std::is_same<U, float>::value || std::is_same<U, double>::value ||
                      std::is_same<U, std::complex<float>>::value || std::is_same<U, bool>::value ||
                      (is_number_integer<U>() && sizeof(U) <= 8),
                  "no dtype stands for this element type: pass the dtype (and std::byte data for raw bytes)");
    if constexpr (std::is_same<U, float>::value) return dtype::F32;
    else if constexpr (std::is_same<U, double>::value) return dtype::F64;
    else if constexpr (std::is_same<U, std::complex<float>>::value) return dtype::C64;
    else if constexpr (std::is_same<U, bool>::value) return dtype::BOOL;
    else return integer_dtype<U>();
}

template <class T>
std::string element_type_name() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same<U, float>::value) return "float";
    else if constexpr (std::is_same<U, double>::value) return "double";
    else if constexpr (std::is_same<U, std::complex<float>>::value) return "std::complex<float>";
    else if constexpr (std::is_same<U, bool>::value) return "bool";
    else if constexpr (std::is_same<U, std::byte>::value) return "std::byte";
    else if constexpr (std::is_same<U, char>::value) return "char";
    else if constexpr (std::is_integral<U>::value)
        return std::string(std::is_signed<U>::value ? "int" : "uint") + std::to_string(8 * sizeof(U)) + "_t";
    else return "this element type";
}

// The element types that write d, for messages: "float or std::byte".
inline std::string writable_types(dtype d) {
    switch (d) {
        case dtype::F32: return "float or std::byte";
        case dtype::F64: return "double or std::byte";
        case dtype::C64: return "std::complex<float> or std::byte";
        case dtype::BOOL: return "bool, std::uint8_t or std::byte";
        case dtype::F16:
        case dtype::BF16: return "std::uint16_t (its bits) or std::byte";
        case dtype::F8_E5M2:
        case dtype::F8_E4M3:
        case dtype::F8_E8M0:
        case dtype::F8_E4M3FNUZ:
        case dtype::F8_E5M2FNUZ: return "std::uint8_t (its bits) or std::byte";
        case dtype::F4:
        case dtype::F6_E2M3:
        case dtype::F6_E3M2: return "std::byte (elements smaller than a byte are packed)";
        default: return "std::" + std::string(to_string(d)[0] == 'I' ? "int" : "uint") +
                        std::to_string(bit_size(d)) + "_t or std::byte";
    }
}

// Throws dtype_mismatch unless T writes d (tensor_ref's typed data). Invalid dtype values
// are left to the write plan, which names them.
template <class T>
void check_writable_as(dtype d, std::string_view name) {
    static_assert(std::is_trivially_copyable<T>::value, "tensor data must be trivially copyable");
    if (static_cast<std::size_t>(d) < dtype_count && !element_type_writes<T>(d))
        throw_error(errc::dtype_mismatch, "tensor " + quote(name) + ": " + element_type_name<T>() +
                                              " data cannot be written as " + std::string(to_string(d)) + ": pass " +
                                              writable_types(d) + " data");
}

// Throws dtype_mismatch unless T reads d (as<T>(), copy_to, to_vector of views and tensors).
template <class T>
void check_readable_as(dtype d, std::string_view name) {
    static_assert(std::is_trivially_copyable<T>::value, "element type must be trivially copyable");
    if (!element_type_matches<T>(d))
        throw_error(errc::dtype_mismatch, "tensor " + quote(name) + " has dtype " + std::string(to_string(d)) +
                                              ", which cannot be read as " + element_type_name<T>());
}

} // namespace safetensors::detail
