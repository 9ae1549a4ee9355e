# Shared by the consumer projects: fail configuration if safetensors::safetensors would hand
# compile options or definitions to its users, then build common/consumer.cpp with the
# consumer's own strict flags.
#
# Checked twice: the target's own INTERFACE_COMPILE_OPTIONS / INTERFACE_COMPILE_DEFINITIONS
# (get_target_property), and their transitive values through every linked target
# (nlohmann_json, Threads), evaluated at generate time into leak-check.txt, which the driver
# (run_consumer.cmake) reads.

foreach(property INTERFACE_COMPILE_OPTIONS INTERFACE_COMPILE_DEFINITIONS)
  get_target_property(value safetensors::safetensors ${property})
  if(value)
    message(FATAL_ERROR "safetensors::safetensors leaks ${property}: '${value}'")
  endif()
endforeach()

file(GENERATE OUTPUT "${CMAKE_BINARY_DIR}/leak-check.txt" CONTENT
"options=[$<TARGET_PROPERTY:safetensors::safetensors,INTERFACE_COMPILE_OPTIONS>]
definitions=[$<TARGET_PROPERTY:safetensors::safetensors,INTERFACE_COMPILE_DEFINITIONS>]
")

add_executable(consumer "${CMAKE_CURRENT_LIST_DIR}/consumer.cpp")
target_link_libraries(consumer PRIVATE safetensors::safetensors)
if(MSVC)
  target_compile_options(consumer PRIVATE /W4 /WX)
else()
  target_compile_options(consumer PRIVATE -Wall -Wextra -Wpedantic -Werror)
endif()
# A generator expression keeps multi-config generators from adding a per-config folder.
set_target_properties(consumer PROPERTIES RUNTIME_OUTPUT_DIRECTORY "$<1:${CMAKE_BINARY_DIR}/bin>")
