# Suites of the stack capture (preload/capture.c, unwind.c, symbolize.c,
# cause.c, pyframes.c): fixtures that block in named functions, CPython,
# redis-server.
elmon_fixture(stack_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c)
target_link_libraries(stack_fix PRIVATE dl)
# The same fixture built by clang as it builds by default (no
# .debug_aranges), whatever compiler this build uses.
find_program(ELMON_CLANG NAMES clang-14 clang)
if(ELMON_CLANG)
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_clang
    COMMAND ${ELMON_CLANG} -O1 -g -o ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_clang
            ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c -lpthread -ldl
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c
    COMMENT "stack_fix built by clang")
  # And as an ASan build (the runtime linked statically, clang's default):
  # its interceptors sit between the fixture's code and libc.
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_asan
    COMMAND ${ELMON_CLANG} -O1 -g -fsanitize=address -o ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_asan
            ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c -lpthread -ldl
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c
    COMMENT "stack_fix built by clang with AddressSanitizer")
  # And as a shared object, for the symbolizer's unit case: clang's line
  # table has rows of line 0 inside stack_busy_cpu's loop.
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/libstack_fix_clang.so
    COMMAND ${ELMON_CLANG} -O1 -g -shared -fPIC -o ${CMAKE_CURRENT_BINARY_DIR}/libstack_fix_clang.so
            ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c -lpthread -ldl
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c
    COMMENT "stack_fix built by clang as a shared object")
  add_custom_target(stack_fix_clang DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_clang
    ${CMAKE_CURRENT_BINARY_DIR}/stack_fix_asan ${CMAKE_CURRENT_BINARY_DIR}/libstack_fix_clang.so)
else()
  add_custom_target(stack_fix_clang)
endif()
add_library(stack_dso SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_dso.c)
set_target_properties(stack_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

elmon_check_test(test_stack SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_stack.c LIBS elmon_core dl
  DEPENDS stack_fix stack_fix_clang stack_dso TIMEOUT 600)

# The span report and its outputs: the culprit rule, the fold format and
# the JSON of common/, then real programs whose outputs must agree
# (tests/test_span.c).
if(TARGET elmon_cli)
  elmon_check_test(test_span SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_span.c LIBS elmon_core
    DEPENDS stack_fix elmon_cli TIMEOUT 600)
  target_compile_definitions(test_span PRIVATE ELMON_CLI="$<TARGET_FILE:elmon_cli>")
endif()
