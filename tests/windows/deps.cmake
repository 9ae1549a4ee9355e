# The Windows cross-build of scripts/test.sh (stage windows), loaded through
# CMAKE_PROJECT_INCLUDE: the header-only dependencies become imported targets on a folder
# that holds only them (SAFETENSORS_WINDOWS_DEPS, links made by test.sh), so MinGW-w64 never
# sees the host's /usr/include, and find_package is not consulted.
if(NOT SAFETENSORS_WINDOWS_DEPS OR NOT IS_DIRECTORY "${SAFETENSORS_WINDOWS_DEPS}")
  message(FATAL_ERROR "tests/windows/deps.cmake: set SAFETENSORS_WINDOWS_DEPS to a folder with nlohmann/, doctest/ and dlpack/")
endif()
foreach(_target nlohmann_json::nlohmann_json doctest::doctest)
  add_library(${_target} INTERFACE IMPORTED)
  set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${SAFETENSORS_WINDOWS_DEPS}")
endforeach()
list(APPEND CMAKE_REQUIRED_INCLUDES "${SAFETENSORS_WINDOWS_DEPS}")  # the <dlpack/dlpack.h> check
