# Suites of the stack capture (preload/capture.c, unwind.c, symbolize.c,
# cause.c, pyframes.c): fixtures that block in named functions, CPython,
# redis-server.
elmon_fixture(stack_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_fix.c)
target_link_libraries(stack_fix PRIVATE dl)
add_library(stack_dso SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stack_dso.c)
set_target_properties(stack_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

elmon_check_test(test_stack SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_stack.c
  DEPENDS stack_fix stack_dso TIMEOUT 600)
