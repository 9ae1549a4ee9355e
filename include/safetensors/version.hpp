// safetensors-hpp: library version. CMake reads the three numbers below (file(STRINGS)),
// so keep each on its own "#define NAME value" line.
#pragma once

#define SAFETENSORS_VERSION_MAJOR 0
#define SAFETENSORS_VERSION_MINOR 2
#define SAFETENSORS_VERSION_PATCH 0
#define SAFETENSORS_VERSION_STRING "0.2.0"

// One number for preprocessor comparisons: MAJOR * 10000 + MINOR * 100 + PATCH.
#define SAFETENSORS_VERSION                                              \
    (SAFETENSORS_VERSION_MAJOR * 10000 + SAFETENSORS_VERSION_MINOR * 100 + \
     SAFETENSORS_VERSION_PATCH)
