// safetensors-hpp: what the hot loops need from the compiler: the steps they run for every
// token or value inlined into them (the header scanner's, the table pools' appends), and the
// rare paths kept out of them.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SAFETENSORS_DETAIL_ALWAYS_INLINE __attribute__((always_inline)) inline
#define SAFETENSORS_DETAIL_COLD __attribute__((noinline, cold))
#else
#define SAFETENSORS_DETAIL_ALWAYS_INLINE inline
#define SAFETENSORS_DETAIL_COLD
#endif
