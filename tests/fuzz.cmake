# libFuzzer targets (tests/fuzz/), only in a clang build configured with
# -DELMON_FUZZ=ON and the sanitizer flags; scripts/fuzz makes that build in
# build-fuzz and runs them.  The normal (gcc) build never sees them.
option(ELMON_FUZZ "Build the libFuzzer targets of tests/fuzz (clang only)" OFF)
if(ELMON_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ELMON_FUZZ needs clang: configure with CC=clang (scripts/fuzz does)")
  endif()
  add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/fuzz ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
endif()
