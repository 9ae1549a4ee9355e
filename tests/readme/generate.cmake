# Turns the ```cpp blocks of README.md into one C++ program (run at build time, `cmake -P`):
#
#   cmake -DREADME=README.md -DOUTPUT=readme_blocks.cpp -DCUDA_OUTPUT=readme_blocks_cuda.cpp
#         [-DCUDA_MODE=compile|skip] [-DCUDA_REASON=text] [-DDLPACK=ON|OFF] -P generate.cmake
#
# THE RULE. Every fenced block (``` or ~~~) whose info string starts with the word `cpp` is a
# test; ```c++, ```cxx, ```cc and ```hpp are refused (write ```cpp), so no block is silently
# left out, and so is a line that looks like a ```cpp fence inside another block.
#   - `#include` lines are moved to the top of the generated file (each header once).
#   - A block with a line starting `int main(` is a whole program: its code goes into
#     namespace readme_block_N at file scope with main renamed (#define main readme_main);
#     it must return 0.
#   - Any other block is a fragment: statements, in order, that become the body of a member
#     function of a struct derived from readme::context (harness.hpp), so they may use the
#     names the README's prose defines (f, rank, world_size, tensors, use(...) ...); a block
#     that declares such a name itself hides the member. A fragment cannot define functions
#     or namespaces (write a whole program for that).
#   - Blocks that include safetensors/cuda.hpp or use `cuda::` are compile-only: they go into
#     CUDA_OUTPUT, which the build compiles (never links, never runs) where the CUDA headers
#     exist (CUDA_MODE=compile); elsewhere (CUDA_MODE=skip) they are counted as skipped, with
#     CUDA_REASON. Blocks that include safetensors/dlpack.hpp are skipped when DLPACK is OFF.
#   - Every other block runs, in a fresh folder holding the fixtures (harness.hpp).
# The program prints "readme: N blocks ran, M compile-only" and fails when a block fails to
# run (an exception, main() != 0) or when the blocks it accounted for differ from the number
# of ```cpp fences in README.md, counted separately here. A block that does not compile fails
# the build, with the error at its line in README.md (#line).
# Blocks illustrate calls and often leave a result unused, so -Wunused-variable and
# -Wunused-but-set-variable (only those) are off for block code; every other warning stays.
# All blocks share one translation unit that also includes harness.hpp (the umbrella header,
# <iostream>, <string>, <vector>, <filesystem> ...), so a block that forgets to include one of
# those still compiles: check a new block's own #include lines by eye.

foreach(var README OUTPUT CUDA_OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "generate.cmake: -D${var}= is required")
  endif()
endforeach()
if(NOT DEFINED CUDA_MODE)
  set(CUDA_MODE skip)
endif()
if(NOT DEFINED CUDA_REASON OR CUDA_REASON STREQUAL "")
  set(CUDA_REASON "the CUDA headers were not found")
endif()
if(NOT DEFINED DLPACK)
  set(DLPACK ON)
endif()

file(READ "${README}" content)
string(REPLACE "\r" "" content "${content}")
get_filename_component(readme_name "${README}" NAME)

# Lines as a CMake list: characters that mean something in lists are replaced first.
string(ASCII 1 SEMI)
string(ASCII 2 LBR)
string(ASCII 3 RBR)
string(ASCII 4 BSL)
string(REPLACE "\\" "${BSL}" content "${content}")
string(REPLACE ";" "${SEMI}" content "${content}")
string(REPLACE "[" "${LBR}" content "${content}")
string(REPLACE "]" "${RBR}" content "${content}")
string(REPLACE "\n" ";" lines "${content}")

# Output: text and a line counter for each file, so #line can return to the generated file.
set(main_out "")
set(main_lines 0)
set(cuda_out "")
set(cuda_lines 0)
macro(emit which text)
  string(APPEND ${which}_out "${text}\n")
  math(EXPR ${which}_lines "${${which}_lines} + 1")
endmacro()

set(main_includes "")
set(cuda_includes "")
set(entries "")
set(state outside)   # outside, cpp, other
set(number 0)
set(line_number 0)
set(found 0)         # ```cpp fences, counted apart from the parser: the counts must match
set(main_file "${OUTPUT}")
set(cuda_file "${CUDA_OUTPUT}")
foreach(line IN LISTS lines)
  math(EXPR line_number "${line_number} + 1")
  if(line MATCHES "^[ ]*(```+|~~~+)[ ]*cpp")  # also ```cppx: then the counts differ
    math(EXPR found "${found} + 1")
  endif()
  if(state STREQUAL "outside")
    if(line MATCHES "^([ ]*)(```+|~~~+)[ ]*([^ \t`]*)")
      set(indent "${CMAKE_MATCH_1}")
      set(fence "${CMAKE_MATCH_2}")
      set(info "${CMAKE_MATCH_3}")
      if(info STREQUAL "cpp")
        set(state cpp)
        math(EXPR number "${number} + 1")
        set(block_line ${line_number})
        set(block_body "")
        set(block_body_lines 0)
        set(block_includes "")
        set(block_program OFF)
        set(block_cuda OFF)
        set(block_dlpack OFF)
        string(LENGTH "${indent}" indent_length)
      elseif(info MATCHES "^(c\\+\\+|C\\+\\+|cxx|cc|hpp|h\\+\\+)$")
        message(FATAL_ERROR "${README}:${line_number}: a C++ block must be fenced as ```cpp to be tested "
                            "(tests/readme/generate.cmake)")
      else()
        set(state other)
      endif()
    endif()
    continue()
  endif()
  # A closing fence: the opening's character, at least as many times, nothing after it.
  set(closes OFF)
  if(line MATCHES "^[ ]*(```+|~~~+)[ \t]*$")
    string(LENGTH "${CMAKE_MATCH_1}" run_length)
    string(LENGTH "${fence}" fence_length)
    string(SUBSTRING "${CMAKE_MATCH_1}" 0 1 run_char)
    string(SUBSTRING "${fence}" 0 1 fence_char)
    if(run_char STREQUAL fence_char AND NOT run_length LESS fence_length)
      set(closes ON)
    endif()
  endif()
  if(state STREQUAL "other")
    if(closes)
      set(state outside)
    endif()
    continue()
  endif()

  # Inside a ```cpp block.
  if(closes)
    set(state outside)
    if(block_cuda)
      set(which cuda)
    else()
      set(which main)
    endif()
    set(reason "")
    if(block_cuda AND NOT CUDA_MODE STREQUAL "compile")
      set(reason "${CUDA_REASON}")
    elseif(block_dlpack AND NOT DLPACK)
      set(reason "<dlpack/dlpack.h> was not found")
    endif()
    if(NOT reason STREQUAL "")
      string(REPLACE "\"" "\\\"" reason "${reason}")
      string(APPEND entries "    {${number}, ${block_line}, readme::kind::skipped, \"${reason}\", nullptr},\n")
      continue()
    endif()
    foreach(include IN LISTS block_includes)
      list(FIND ${which}_includes "${include}" seen)
      if(seen EQUAL -1)
        list(APPEND ${which}_includes "${include}")
      endif()
    endforeach()
    math(EXPR first_line "${block_line} + 1")
    emit(${which} "")
    emit(${which} "// ---- block ${number}, ${readme_name} line ${block_line}")
    emit(${which} "namespace readme_block_${number} {")
    if(block_program)
      emit(${which} "#define main readme_main")
    else()
      emit(${which} "struct fragment : readme::context {")
      emit(${which} "    void run();")
      emit(${which} "};")
      emit(${which} "void fragment::run() {")
    endif()
    emit(${which} "#line ${first_line} \"${README}\"")
    string(APPEND ${which}_out "${block_body}")
    math(EXPR ${which}_lines "${${which}_lines} + ${block_body_lines}")
    # Back to this file's own numbering (the header's lines are added when it is written).
    math(EXPR next "${${which}_lines} + 2")
    emit(${which} "#line @GENLINE:${next}@ \"${${which}_file}\"")
    if(block_program)
      emit(${which} "#undef main")
      emit(${which} "void run() { readme::call_main(&readme_main); }")
    else()
      emit(${which} "}")
      emit(${which} "void run() { fragment block; block.run(); }")
    endif()
    emit(${which} "} // namespace readme_block_${number}")
    if(block_cuda)
      string(APPEND entries "    {${number}, ${block_line}, readme::kind::compile_only, "
                            "\"compiled, not run (CUDA): readme_blocks_cuda.cpp, target safetensors-readme-cuda\", nullptr},\n")
    else()
      string(APPEND entries "    {${number}, ${block_line}, readme::kind::run, \"\", readme_block_${number}::run},\n")
    endif()
    continue()
  endif()

  # Strip the fence's indentation (a block inside a list item).
  if(indent_length GREATER 0 AND line MATCHES "^[ ]+")
    string(LENGTH "${CMAKE_MATCH_0}" spaces)
    if(spaces GREATER indent_length)
      set(spaces ${indent_length})
    endif()
    string(SUBSTRING "${line}" ${spaces} -1 line)
  endif()
  if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    string(STRIP "${line}" include)
    list(APPEND block_includes "${include}")
    if(include MATCHES "safetensors/cuda\\.hpp")
      set(block_cuda ON)
    endif()
    if(include MATCHES "safetensors/dlpack\\.hpp")
      set(block_dlpack ON)
    endif()
    set(line "")  # keeps the line numbers
  endif()
  if(line MATCHES "^[ \t]*int[ \t]+main[ \t]*\\(")
    set(block_program ON)
  endif()
  if(line MATCHES "cuda::")
    set(block_cuda ON)
  endif()
  string(APPEND block_body "${line}\n")
  math(EXPR block_body_lines "${block_body_lines} + 1")
endforeach()
if(NOT state STREQUAL "outside")
  message(FATAL_ERROR "${README}: a code block is not closed at the end of the file")
endif()
if(NOT number EQUAL found)
  message(FATAL_ERROR "${README}: found ${found} ```cpp fences but parsed ${number} blocks "
                      "(a ```cpp fence inside another block, or an info string such as ```cppx?)")
endif()

# The files: a header, the hoisted includes, the blocks, and (main file) the table and main().
function(write_file which path title)
  set(text "// Generated from ${README} by tests/readme/generate.cmake: do not edit.\n")
  string(APPEND text "// ${title}\n")
  string(APPEND text "#include \"harness.hpp\"\n")
  foreach(include IN LISTS ${which}_includes)
    string(APPEND text "${include}\n")
  endforeach()
  string(APPEND text "\n#if defined(__GNUC__)\n")
  string(APPEND text "#pragma GCC diagnostic ignored \"-Wunused-variable\"\n")
  string(APPEND text "#pragma GCC diagnostic ignored \"-Wunused-but-set-variable\"\n")
  string(APPEND text "#endif\n")
  string(REGEX MATCHALL "\n" header_newlines "${text}")
  list(LENGTH header_newlines header_lines)
  set(body "${${which}_out}")
  string(REGEX MATCHALL "@GENLINE:[0-9]+@" markers "${body}")
  foreach(marker IN LISTS markers)
    string(REGEX REPLACE "@GENLINE:([0-9]+)@" "\\1" value "${marker}")
    math(EXPR value "${value} + ${header_lines}")
    string(REPLACE "${marker}" "${value}" body "${body}")
  endforeach()
  string(APPEND text "${body}")
  string(APPEND text "${ARGN}")
  string(REPLACE "${SEMI}" ";" text "${text}")
  string(REPLACE "${LBR}" "[" text "${text}")
  string(REPLACE "${RBR}" "]" text "${text}")
  string(REPLACE "${BSL}" "\\" text "${text}")
  # Written only when it changed, so an edit elsewhere in README.md recompiles nothing.
  file(WRITE "${path}.tmp" "${text}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${path}.tmp" "${path}")
  file(REMOVE "${path}.tmp")
endfunction()

set(table "\n// ---- the blocks, in README order, and the runner\n")
string(APPEND table "static const std::vector<readme::block> readme_blocks = {\n${entries}};\n\n")
string(APPEND table "int main(int argc, char** argv) {\n")
string(APPEND table "    return readme::run_all(readme_blocks, ${found}, \"${readme_name}\", argc, argv);\n}\n")
write_file(main "${OUTPUT}" "README.md's C++ blocks that run, and the runner (safetensors-readme)." "${table}")
write_file(cuda "${CUDA_OUTPUT}" "README.md's compile-only (CUDA) blocks: compiled, never run (safetensors-readme-cuda).")
