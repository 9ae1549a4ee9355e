# Settings for the project's own executables (tests, examples, benchmarks, tools).
# Everything here is PRIVATE to those targets: nothing reaches the `safetensors` interface
# target, so consumers never inherit warnings, -Werror, sanitizers or definitions.

set(SAFETENSORS_PROGRAM_FLAGS "" CACHE STRING
    "Extra compile options for the examples, tools and benchmarks, e.g. -O1 (CI builds them only to run the tests)")

# safetensors_configure_executable(<target> [SANITIZE] [PROGRAM])
#   warnings (+ -Werror when SAFETENSORS_WERROR), no compiler extensions, output in
#   <build>/bin, with SANITIZE the sanitizers named in SAFETENSORS_SANITIZE, and with PROGRAM
#   (an example, tool or benchmark) the options in SAFETENSORS_PROGRAM_FLAGS.
function(safetensors_configure_executable target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "SANITIZE;PROGRAM" "" "")

  target_link_libraries(${target} PRIVATE safetensors::safetensors)
  set_target_properties(${target} PROPERTIES
    CXX_EXTENSIONS OFF
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")

  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive- /utf-8)
    if(SAFETENSORS_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(SAFETENSORS_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()

  if(arg_PROGRAM AND SAFETENSORS_PROGRAM_FLAGS)
    separate_arguments(_program_flags UNIX_COMMAND "${SAFETENSORS_PROGRAM_FLAGS}")
    target_compile_options(${target} PRIVATE ${_program_flags})
  endif()

  if(arg_SANITIZE AND SAFETENSORS_SANITIZE)
    if(MSVC)
      target_compile_options(${target} PRIVATE /fsanitize=${SAFETENSORS_SANITIZE})
    else()
      target_compile_options(${target} PRIVATE
        -fsanitize=${SAFETENSORS_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
      target_link_options(${target} PRIVATE -fsanitize=${SAFETENSORS_SANITIZE})
    endif()
  endif()
endfunction()
