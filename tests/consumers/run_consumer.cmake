# Driver for the consumer tests (cmake -P). Each mode starts from an empty WORK_DIR.
#
#   MODE=install           configure SOURCE_DIR alone (no tests/examples/benchmarks) and
#                          `cmake --install` it into PREFIX; the fixture for the modes below
#   MODE=find_package      build tests/consumers/find_package against PREFIX
#   MODE=add_subdirectory  build tests/consumers/add_subdirectory on SOURCE_DIR
#   MODE=fetchcontent      build tests/consumers/fetchcontent on SOURCE_DIR
#   MODE=pkgconfig         compile common/consumer.cpp with `pkg-config --cflags safetensors`
#                          from PREFIX, using the compiler CXX directly
#
# Other variables: WORK_DIR, PREFIX, CXX (compiler), GENERATOR, MAKE_PROGRAM, FIXTURE (file
# the consumer opens), EXPECT (regex its output must match), VERSION, and optional
# NLOHMANN_JSON_DIR (its package dir) / NLOHMANN_JSON_SOURCE_DIR (a fetched copy).
cmake_minimum_required(VERSION 3.16)

foreach(required MODE SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "run_consumer.cmake: -D${required}=... is required")
  endif()
endforeach()
set(consumers_dir "${CMAKE_CURRENT_LIST_DIR}")

function(run)
  string(REPLACE ";" " " pretty "${ARGV}")
  message(STATUS "$ ${pretty}")
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${pretty}")
  endif()
endfunction()

function(require_files)
  foreach(path IN LISTS ARGV)
    if(NOT EXISTS "${path}")
      message(FATAL_ERROR "missing after install: ${path}")
    endif()
    message(STATUS "ok: ${path}")
  endforeach()
endfunction()

# Flags a consumer must never receive from the library.
function(check_flags what text)
  separate_arguments(tokens UNIX_COMMAND "${text}")
  foreach(token IN LISTS tokens)
    if(token MATCHES "^(-D|/D|-U|-W|-f|-pthread|-O|-g$|-std)")
      # The consumer's own strict flags are expected; anything else came from the library.
      if(NOT token MATCHES "^-W(all|extra|pedantic|error)$" AND NOT token MATCHES "^-std=")
        message(FATAL_ERROR "${what} carries '${token}', which must not come from safetensors:\n${text}")
      endif()
    endif()
  endforeach()
endfunction()

function(run_consumer_binary exe)
  message(STATUS "$ ${exe} ${FIXTURE}")
  execute_process(COMMAND "${exe}" "${FIXTURE}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "consumer output:\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer exited with ${rc}")
  endif()
  if(DEFINED EXPECT AND NOT out MATCHES "${EXPECT}")
    message(FATAL_ERROR "consumer output does not match '${EXPECT}'")
  endif()
endfunction()

set(common_args "")
if(GENERATOR)
  list(APPEND common_args -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND common_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX)
  list(APPEND common_args "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
if(NLOHMANN_JSON_DIR)
  list(APPEND common_args "-Dnlohmann_json_DIR=${NLOHMANN_JSON_DIR}")
endif()
if(NLOHMANN_JSON_SOURCE_DIR)
  list(APPEND common_args "-DFETCHCONTENT_SOURCE_DIR_NLOHMANN_JSON=${NLOHMANN_JSON_SOURCE_DIR}")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" ${common_args}
      -DCMAKE_BUILD_TYPE=Release
      -DSAFETENSORS_BUILD_TESTS=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF
      -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_INSTALL=ON
      "-DCMAKE_INSTALL_PREFIX=${PREFIX}")
  run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config Release)
  run("${CMAKE_COMMAND}" --install "${WORK_DIR}/build" --config Release --prefix "${PREFIX}")
  require_files(
    "${PREFIX}/include/safetensors/safetensors.hpp"
    "${PREFIX}/include/safetensors/version.hpp"
    "${PREFIX}/share/cmake/safetensors/safetensorsConfig.cmake"
    "${PREFIX}/share/cmake/safetensors/safetensorsConfigVersion.cmake"
    "${PREFIX}/share/cmake/safetensors/safetensorsTargets.cmake"
    "${PREFIX}/share/pkgconfig/safetensors.pc")
  # safetensorsTargets.cmake, and safetensorsCudaTargets.cmake when built with CUDA.
  file(GLOB exported "${PREFIX}/share/cmake/safetensors/safetensors*Targets.cmake")
  foreach(path IN LISTS exported)
    file(READ "${path}" targets)
    if(targets MATCHES "INTERFACE_COMPILE_(OPTIONS|DEFINITIONS)")
      message(FATAL_ERROR "installed ${path} sets compile options or definitions")
    endif()
    message(STATUS "ok: no compile options or definitions in ${path}")
  endforeach()

elseif(MODE MATCHES "^(find_package|add_subdirectory|fetchcontent)$")
  set(args ${common_args}
      "-DSAFETENSORS_SOURCE_DIR=${SOURCE_DIR}"
      -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
      # No build type and no CXXFLAGS from the environment: the compile line then holds
      # only what the consumer asked for and what safetensors hands down.
      -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=)
  if(MODE STREQUAL "find_package")
    list(APPEND args "-DCMAKE_PREFIX_PATH=${PREFIX}")
  endif()
  run("${CMAKE_COMMAND}" -S "${consumers_dir}/${MODE}" -B "${WORK_DIR}" ${args})

  # Transitive usage requirements, evaluated by the consumer's own generate step.
  file(READ "${WORK_DIR}/leak-check.txt" leak)
  string(REGEX REPLACE "[ ;]" "" leak_compact "${leak}")
  if(NOT leak_compact STREQUAL "options=[]\ndefinitions=[]\n")
    message(FATAL_ERROR "safetensors::safetensors passes flags on to consumers:\n${leak}")
  endif()
  message(STATUS "ok: no transitive compile options or definitions")

  run("${CMAKE_COMMAND}" --build "${WORK_DIR}" --config Release --verbose)

  # The compile line the consumer actually got (Makefile and Ninja generators).
  if(EXISTS "${WORK_DIR}/compile_commands.json")
    file(READ "${WORK_DIR}/compile_commands.json" commands)
    if(NOT commands MATCHES "\"command\": \"([^\n]*consumer\\.cpp[^\n]*)\"")
      message(FATAL_ERROR "consumer.cpp not in compile_commands.json")
    endif()
    set(command "${CMAKE_MATCH_1}")
    message(STATUS "compile command: ${command}")
    check_flags("the consumer's compile command" "${command}")
    message(STATUS "ok: compile command carries only the consumer's own flags")
  endif()

  file(GLOB exe "${WORK_DIR}/bin/consumer" "${WORK_DIR}/bin/consumer.exe")
  if(NOT exe)
    message(FATAL_ERROR "consumer binary not found in ${WORK_DIR}/bin")
  endif()
  run_consumer_binary("${exe}")

elseif(MODE STREQUAL "pkgconfig")
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message(FATAL_ERROR "pkg-config not found")
  endif()
  set(path "${PREFIX}/share/pkgconfig")
  if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
    string(APPEND path ":$ENV{PKG_CONFIG_PATH}")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${path}")
  foreach(query modversion cflags libs)
    execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --${query} safetensors
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "pkg-config --${query} safetensors failed:\n${err}")
    endif()
    message(STATUS "pkg-config --${query} safetensors: ${out}")
    set(pc_${query} "${out}")
  endforeach()
  if(VERSION AND NOT pc_modversion STREQUAL VERSION)
    message(FATAL_ERROR "pkg-config reports version ${pc_modversion}, expected ${VERSION}")
  endif()
  check_flags("pkg-config --cflags" "${pc_cflags}")
  separate_arguments(cflags UNIX_COMMAND "${pc_cflags}")
  separate_arguments(libs UNIX_COMMAND "${pc_libs}")
  run("${CXX}" -std=c++17 -Wall -Wextra -Wpedantic -Werror ${cflags}
      "${consumers_dir}/common/consumer.cpp" -o "${WORK_DIR}/consumer" ${libs})
  run_consumer_binary("${WORK_DIR}/consumer")

else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
