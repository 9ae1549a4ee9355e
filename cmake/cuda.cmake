# The optional CUDA integration: safetensors::cuda, for safetensors/cuda.hpp (and the
# cuda_resources.hpp it includes).
#
# Included from the top-level CMakeLists.txt after the safetensors target exists. When the CUDA
# toolkit is found (find_package(CUDAToolkit)), it creates the INTERFACE target
# safetensors::cuda (safetensors::safetensors + CUDA::cudart) and sets SAFETENSORS_HAS_CUDA.
# cuda.hpp has no kernels, so consumers compile it with their C++ compiler; nvcc is not needed.
#
# The project's own CUDA tests, examples and benchmark (tests/cuda, examples/cuda, bench/cuda)
# are built by safetensors_cuda_executable(); where nvcc exists (SAFETENSORS_HAS_NVCC),
# tests/cuda also compiles cuda.hpp on its own with nvcc, so CI without a GPU still proves that
# it builds under nvcc.
#
# safetensors_cuda_install() (called in the install section) exports the target as
# safetensorsCudaTargets.cmake, which the package config loads for the `cuda` component.

include_guard(GLOBAL)

option(SAFETENSORS_CUDA "Build the CUDA integration (safetensors::cuda) when the CUDA toolkit is found" ON)
set(SAFETENSORS_HAS_CUDA OFF)
set(SAFETENSORS_HAS_NVCC OFF)

if(SAFETENSORS_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    add_library(safetensors_cuda INTERFACE)
    add_library(safetensors::cuda ALIAS safetensors_cuda)
    set_target_properties(safetensors_cuda PROPERTIES EXPORT_NAME cuda)
    target_link_libraries(safetensors_cuda INTERFACE safetensors CUDA::cudart)
    set(SAFETENSORS_HAS_CUDA ON)

    if(SAFETENSORS_BUILD_TESTS OR SAFETENSORS_BUILD_EXAMPLES OR SAFETENSORS_BUILD_BENCHMARKS)
      include(CheckLanguage)
      check_language(CUDA)
      if(CMAKE_CUDA_COMPILER)
        # Hopper (H100, H200) unless the caller chose; the sources hold no kernels anyway.
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
          set(CMAKE_CUDA_ARCHITECTURES 90)
        endif()
        enable_language(CUDA)
        set(SAFETENSORS_HAS_NVCC ON)
      endif()
    endif()
    if(SAFETENSORS_REQUIRE_CUDA AND NOT SAFETENSORS_HAS_NVCC)
      message(FATAL_ERROR "safetensors: SAFETENSORS_REQUIRE_CUDA is on but nvcc was not found "
                          "(or tests, examples and benchmarks are all off)")
    endif()
    if(SAFETENSORS_HAS_NVCC)
      message(STATUS "safetensors: CUDA ${CUDAToolkit_VERSION} found: safetensors::cuda; the project's "
                     "CUDA sources are compiled by nvcc ${CMAKE_CUDA_COMPILER_VERSION}")
    else()
      message(STATUS "safetensors: CUDA ${CUDAToolkit_VERSION} found: safetensors::cuda")
    endif()
  elseif(SAFETENSORS_REQUIRE_CUDA)
    message(FATAL_ERROR "safetensors: SAFETENSORS_REQUIRE_CUDA is on but the CUDA toolkit was not found")
  else()
    message(STATUS "safetensors: CUDA toolkit not found: no safetensors::cuda")
  endif()
endif()

# safetensors_cuda_executable(<target> <source>...)
#   An executable of the project (test, example, benchmark) that uses safetensors/cuda.hpp:
#   nvcc compiles its sources when available, else the C++ compiler; warnings as in
#   safetensors_configure_executable(), output in <build>/bin.
#   HOST_COMPILER: the C++ compiler compiles every source, as a consumer's would (cuda.hpp has
#   no kernels); the project's tests, examples and benchmark all use it (nvcc's minute for each
#   program checked nothing the one nvcc translation unit of tests/cuda does not).
#   CXX_SOURCES src...: sources that never need nvcc (doctest's main).
function(safetensors_cuda_executable target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "HOST_COMPILER" "" "CXX_SOURCES")
  add_executable(${target} ${arg_UNPARSED_ARGUMENTS} ${arg_CXX_SOURCES})
  target_link_libraries(${target} PRIVATE safetensors::cuda)
  set_target_properties(${target} PROPERTIES
    CXX_EXTENSIONS OFF
    CUDA_EXTENSIONS OFF
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
  if(SAFETENSORS_HAS_NVCC AND NOT arg_HOST_COMPILER)
    set_source_files_properties(${arg_UNPARSED_ARGUMENTS} PROPERTIES LANGUAGE CUDA)
    target_compile_features(${target} PRIVATE cuda_std_17)
    # CUDA::cudart comes through safetensors::cuda; do not add nvcc's static one as well.
    set_target_properties(${target} PROPERTIES CUDA_RUNTIME_LIBRARY None)
    if(NOT MSVC)
      set(_flags "-Wall,-Wextra")
      if(SAFETENSORS_WERROR)
        string(APPEND _flags ",-Werror")
      endif()
      target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_flags}>")
      if(SAFETENSORS_WERROR)
        # nvcc's own front end warnings too (e.g. C++20 constructs it accepts in C++17 mode).
        target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
      endif()
    endif()
  endif()
  # The examples and the benchmark take SAFETENSORS_PROGRAM_FLAGS as the other programs do
  # (CI builds them at -O0 only to compile and run them).
  if(arg_HOST_COMPILER AND SAFETENSORS_PROGRAM_FLAGS)
    separate_arguments(_program_flags UNIX_COMMAND "${SAFETENSORS_PROGRAM_FLAGS}")
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${_program_flags}>")
  endif()
  # The sources the C++ compiler compiles (all of them without nvcc).
  if(MSVC)
    target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:/W4;/permissive-;/utf-8;$<$<BOOL:${SAFETENSORS_WERROR}>:/WX>>")
  else()
    target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;$<$<BOOL:${SAFETENSORS_WERROR}>:-Werror>>")
  endif()
endfunction()

# Installs safetensors::cuda as safetensorsCudaTargets.cmake next to safetensorsConfig.cmake.
function(safetensors_cuda_install)
  if(SAFETENSORS_HAS_CUDA)
    install(TARGETS safetensors_cuda EXPORT safetensorsCudaTargets)
    install(EXPORT safetensorsCudaTargets
      NAMESPACE safetensors::
      DESTINATION "${SAFETENSORS_INSTALL_CMAKEDIR}")
  endif()
endfunction()
