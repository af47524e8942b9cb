# Python frames read from the interpreter's memory (tests/test_pyframes.c):
# every CPython present (Debian's, pyenv's 3.6 to 3.13), the layouts
# checked against each one's own headers (tests/pylayout_probe.c against
# pylayout_dump, which links libelmon's tables).
add_executable(pylayout_dump ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/pylayout_dump.c
  ${PROJECT_SOURCE_DIR}/preload/record/pylayout.c)
target_include_directories(pylayout_dump PRIVATE ${PROJECT_SOURCE_DIR}/preload/record)
target_link_libraries(pylayout_dump PRIVATE dl)
elmon_check_test(test_pyframes SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pyframes.c
  DEPENDS pylayout_dump TIMEOUT 900)
target_compile_definitions(test_pyframes PRIVATE ELMON_CC="${CMAKE_C_COMPILER}")
