// safetensors-hpp: HTTP-date (RFC 9110 5.6.7) to Unix seconds: the IMF-fixdate every current
// server sends, and the obsolete RFC 850 and asctime forms recipients must still accept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http_text.hpp"

namespace safetensors::detail::http {

// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) noexcept {
    if (month <= 2) --year;
    const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
    const auto year_of_era = static_cast<unsigned>(year - era * 400);
    const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + std::int64_t{day_of_era} - 719468;
}

// The Gregorian year a Unix time falls in (civil_from_days, year only).
constexpr std::int64_t year_of_unix_seconds(std::int64_t seconds) noexcept {
    const std::int64_t days = seconds / 86400 - (seconds % 86400 < 0 ? 1 : 0);
    const std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto day_of_era = static_cast<unsigned>(z - era * 146097);
    const unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const unsigned shifted_month = (5 * day_of_year + 2) / 153;  // March is 0
    return std::int64_t{year_of_era} + era * 400 + (shifted_month >= 10 ? 1 : 0);
}

struct http_date_fields {
    std::int64_t year = 0;
    unsigned month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

// Exactly `count` digits.
inline bool take_digits(std::string_view& text, std::size_t count, unsigned& out) noexcept {
    if (text.size() < count) return false;
    unsigned value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!is_digit(text[i])) return false;
        value = value * 10 + static_cast<unsigned>(text[i] - '0');
    }
    out = value;
    text.remove_prefix(count);
    return true;
}

// Month and day names are case-sensitive in HTTP-date.
inline bool take_month(std::string_view& text, unsigned& month) noexcept {
    constexpr std::string_view names = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (unsigned i = 0; i < 12; ++i) {
        if (take_literal(text, names.substr(i * 3, 3))) {
            month = i + 1;
            return true;
        }
    }
    return false;
}

// The weekday is checked for spelling only, not against the date (RFC 9110 asks no more).
inline bool take_day_name(std::string_view& text, bool long_form) noexcept {
    constexpr std::string_view names[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    for (std::string_view name : names)
        if (take_literal(text, long_form ? name : name.substr(0, 3))) return true;
    return false;
}

inline bool take_time(std::string_view& text, http_date_fields& f) noexcept {
    return take_digits(text, 2, f.hour) && take_literal(text, ":") && take_digits(text, 2, f.minute) &&
           take_literal(text, ":") && take_digits(text, 2, f.second);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
inline bool parse_imf_fixdate(std::string_view text, http_date_fields& f) noexcept {
    unsigned year = 0;
    const bool ok = take_day_name(text, false) && take_literal(text, ", ") && take_digits(text, 2, f.day) &&
                    take_literal(text, " ") && take_month(text, f.month) && take_literal(text, " ") &&
                    take_digits(text, 4, year) && take_literal(text, " ") && take_time(text, f) &&
                    take_literal(text, " GMT") && text.empty();
    f.year = year;
    return ok;
}

// "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more than 50 years after now's year is
// the most recent past year with those digits (RFC 9110 5.6.7).
inline bool parse_rfc850_date(std::string_view text, std::int64_t now, http_date_fields& f) noexcept {
    unsigned two_digits = 0;
    const bool ok = take_day_name(text, true) && take_literal(text, ", ") && take_digits(text, 2, f.day) &&
                    take_literal(text, "-") && take_month(text, f.month) && take_literal(text, "-") &&
                    take_digits(text, 2, two_digits) && take_literal(text, " ") && take_time(text, f) &&
                    take_literal(text, " GMT") && text.empty();
    if (!ok) return false;
    const std::int64_t this_year = year_of_unix_seconds(now);
    f.year = this_year - (this_year % 100 + 100) % 100 + two_digits;
    if (f.year > this_year + 50) f.year -= 100;
    return true;
}

// "Sun Nov  6 08:49:37 1994" (a one-digit day is preceded by a space).
inline bool parse_asctime_date(std::string_view text, http_date_fields& f) noexcept {
    unsigned year = 0;
    const bool ok = take_day_name(text, false) && take_literal(text, " ") && take_month(text, f.month) &&
                    take_literal(text, " ") &&
                    (take_literal(text, " ") ? take_digits(text, 1, f.day) : take_digits(text, 2, f.day)) &&
                    take_literal(text, " ") && take_time(text, f) && take_literal(text, " ") &&
                    take_digits(text, 4, year) && text.empty();
    f.year = year;
    return ok;
}

inline unsigned days_in_month(std::int64_t year, unsigned month) noexcept {
    constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

// An HTTP-date as Unix seconds; `now` (Unix seconds) places RFC 850's two-digit years. Years
// outside 0..9999 and impossible fields (Feb 30, 24:00:00) are refused; second 60 (a leap
// second) is accepted.
inline bool parse_http_date(std::string_view text, std::int64_t now, std::int64_t& unix_seconds) noexcept {
    http_date_fields f;
    if (!parse_imf_fixdate(text, f) && !parse_rfc850_date(text, now, f) && !parse_asctime_date(text, f))
        return false;
    if (f.year < 0 || f.year > 9999 || f.month < 1 || f.month > 12 || f.day < 1 ||
        f.day > days_in_month(f.year, f.month) || f.hour > 23 || f.minute > 59 || f.second > 60)
        return false;
    unix_seconds = days_from_civil(f.year, f.month, f.day) * 86400 + std::int64_t{f.hour} * 3600 +
                   std::int64_t{f.minute} * 60 + std::int64_t{f.second};
    return true;
}

} // namespace safetensors::detail::http
