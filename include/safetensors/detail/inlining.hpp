// safetensors-hpp: what the hot loops need from the compiler: the steps they run for every
// token or value inlined into them (the header scanner's, the table pools' appends), the
// rare paths kept out of them, and the open's functions kept together.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SAFETENSORS_DETAIL_ALWAYS_INLINE __attribute__((always_inline)) inline
#define SAFETENSORS_DETAIL_COLD __attribute__((noinline, cold))
// On every open's path (the source, the header's read and scan, the table's index). GCC and
// Clang put such functions in .text.hot.* sections, which GNU ld's default script places
// together, right after the startup code where GCC puts main: a first open in a fresh process
// then faults in its code once or not at all, where the same functions spread over the
// program's text took a page fault (and its mapping of 16 neighbouring pages) each.
#define SAFETENSORS_DETAIL_HOT __attribute__((hot))
#else
#define SAFETENSORS_DETAIL_ALWAYS_INLINE inline
#define SAFETENSORS_DETAIL_COLD
#define SAFETENSORS_DETAIL_HOT
#endif
