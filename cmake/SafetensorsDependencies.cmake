# Third-party dependencies: an installed package first, a pinned release download second.
#
# Each macro (not function, so that <Pkg>_FOUND and the imported targets stay visible to the
# caller) leaves the namespaced target the rest of the build links to:
#   safetensors_find_nlohmann_json()  -> nlohmann_json::nlohmann_json   (library dependency)
#   safetensors_find_doctest()        -> doctest::doctest                 (tests only)
#   safetensors_find_benchmark()      -> benchmark::benchmark             (benchmarks only)
#   safetensors_find_cli11()          -> CLI11::CLI11                     (the safetensors tool only)
#
# Point FETCHCONTENT_SOURCE_DIR_<NAME> at a local copy to build offline without the package.

include(FetchContent)

# FetchContent's SYSTEM keyword (CMake 3.25+) keeps -Wpedantic -Werror out of fetched headers.
set(_safetensors_fetch_system "")
if(NOT CMAKE_VERSION VERSION_LESS 3.25)
  set(_safetensors_fetch_system SYSTEM)
endif()
set(_safetensors_fetch_timestamp "")
if(NOT CMAKE_VERSION VERSION_LESS 3.24)
  set(_safetensors_fetch_timestamp DOWNLOAD_EXTRACT_TIMESTAMP TRUE)
endif()

macro(safetensors_find_nlohmann_json)
  if(NOT TARGET nlohmann_json::nlohmann_json)
    find_package(nlohmann_json 3.11 QUIET)
  endif()
  if(NOT TARGET nlohmann_json::nlohmann_json)
    message(STATUS "safetensors: nlohmann_json >= 3.11 not found, fetching v3.11.3")
    set(JSON_BuildTests OFF CACHE INTERNAL "")
    # The exported safetensors target links nlohmann_json, so its targets must be installed
    # (and exported) alongside ours when we install.
    set(JSON_Install ${SAFETENSORS_INSTALL} CACHE INTERNAL "")
    FetchContent_Declare(nlohmann_json
      URL https://github.com/nlohmann/json/releases/download/v3.11.3/json.tar.xz
      URL_HASH SHA256=d6c65aca6b1ed68e7a182f4757257b107ae403032760ed6ef121c9d55e81757d
      ${_safetensors_fetch_timestamp}
      ${_safetensors_fetch_system})
    FetchContent_MakeAvailable(nlohmann_json)
    set(SAFETENSORS_FETCHED_NLOHMANN_JSON TRUE)
  endif()
endmacro()

macro(safetensors_find_doctest)
  if(NOT TARGET doctest::doctest)
    find_package(doctest QUIET)
  endif()
  if(NOT TARGET doctest::doctest)
    message(STATUS "safetensors: doctest not found, fetching v2.4.11")
    set(DOCTEST_WITH_TESTS OFF CACHE INTERNAL "")
    set(DOCTEST_NO_INSTALL ON CACHE INTERNAL "")
    FetchContent_Declare(doctest
      URL https://github.com/doctest/doctest/archive/refs/tags/v2.4.11.tar.gz
      URL_HASH SHA256=632ed2c05a7f53fa961381497bf8069093f0d6628c5f26286161fbd32a560186
      ${_safetensors_fetch_timestamp}
      ${_safetensors_fetch_system})
    FetchContent_MakeAvailable(doctest)
  endif()
endmacro()

macro(safetensors_find_benchmark)
  if(NOT TARGET benchmark::benchmark)
    find_package(benchmark QUIET)
  endif()
  if(NOT TARGET benchmark::benchmark)
    message(STATUS "safetensors: Google Benchmark not found, fetching v1.8.3")
    set(BENCHMARK_ENABLE_TESTING OFF CACHE INTERNAL "")
    set(BENCHMARK_ENABLE_GTEST_TESTS OFF CACHE INTERNAL "")
    set(BENCHMARK_ENABLE_INSTALL OFF CACHE INTERNAL "")
    set(BENCHMARK_ENABLE_WERROR OFF CACHE INTERNAL "")
    set(BENCHMARK_INSTALL_DOCS OFF CACHE INTERNAL "")
    FetchContent_Declare(benchmark
      URL https://github.com/google/benchmark/archive/refs/tags/v1.8.3.tar.gz
      URL_HASH SHA256=6bc180a57d23d4d9515519f92b0c83d61b05b5bab188961f36ac7b06b0d9e9ce
      ${_safetensors_fetch_timestamp}
      ${_safetensors_fetch_system})
    FetchContent_MakeAvailable(benchmark)
  endif()
endmacro()

macro(safetensors_find_cli11)
  if(NOT TARGET CLI11::CLI11)
    find_package(CLI11 2.1 QUIET)
  endif()
  if(NOT TARGET CLI11::CLI11)
    message(STATUS "safetensors: CLI11 >= 2.1 not found, fetching v2.1.2")
    set(CLI11_PRECOMPILED OFF CACHE INTERNAL "")
    set(CLI11_BUILD_TESTS OFF CACHE INTERNAL "")
    set(CLI11_BUILD_EXAMPLES OFF CACHE INTERNAL "")
    set(CLI11_BUILD_DOCS OFF CACHE INTERNAL "")
    set(CLI11_INSTALL OFF CACHE INTERNAL "")
    FetchContent_Declare(cli11
      GIT_REPOSITORY https://github.com/CLIUtils/CLI11.git
      GIT_TAG v2.1.2
      GIT_SHALLOW TRUE
      ${_safetensors_fetch_system})
    FetchContent_MakeAvailable(cli11)
  endif()
endmacro()
