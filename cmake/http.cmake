# The optional HTTP(S) reader: safetensors::http, for safetensors/http.hpp.
#
# Included from the top-level CMakeLists.txt after the safetensors target exists. When libcurl
# is found (find_package(CURL); Debian: libcurl4-openssl-dev), it creates the INTERFACE target
# safetensors::http (safetensors::safetensors + CURL::libcurl) and sets SAFETENSORS_HAS_HTTP.
# safetensors_http_install() (called in the install section) exports it as
# safetensorsHttpTargets.cmake, which the package config loads for the `http` component.

include_guard(GLOBAL)

option(SAFETENSORS_HTTP "Build the HTTP(S) reader (safetensors::http) when libcurl is found" ON)
set(SAFETENSORS_HAS_HTTP OFF)

if(SAFETENSORS_HTTP)
  find_package(CURL QUIET)
  if(CURL_FOUND AND TARGET CURL::libcurl)
    add_library(safetensors_http INTERFACE)
    add_library(safetensors::http ALIAS safetensors_http)
    set_target_properties(safetensors_http PROPERTIES EXPORT_NAME http)
    target_link_libraries(safetensors_http INTERFACE safetensors CURL::libcurl)
    set(SAFETENSORS_HAS_HTTP ON)
    message(STATUS "safetensors: libcurl ${CURL_VERSION_STRING} found: safetensors::http")
  elseif(SAFETENSORS_REQUIRE_HTTP)
    message(FATAL_ERROR "safetensors: SAFETENSORS_REQUIRE_HTTP is on but libcurl was not found "
                        "(Debian: apt-get install libcurl4-openssl-dev)")
  else()
    message(STATUS "safetensors: libcurl not found: no safetensors::http")
  endif()
elseif(SAFETENSORS_REQUIRE_HTTP)
  message(FATAL_ERROR "safetensors: SAFETENSORS_REQUIRE_HTTP is on but SAFETENSORS_HTTP is off")
endif()

# Installs safetensors::http as safetensorsHttpTargets.cmake next to safetensorsConfig.cmake.
function(safetensors_http_install)
  if(SAFETENSORS_HAS_HTTP)
    install(TARGETS safetensors_http EXPORT safetensorsHttpTargets)
    install(EXPORT safetensorsHttpTargets
      NAMESPACE safetensors::
      DESTINATION "${SAFETENSORS_INSTALL_CMAKEDIR}")
  endif()
endfunction()
