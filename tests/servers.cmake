# Issue 6: the servers people run, under libelmon.
elmon_check_test(test_servers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_servers.c TIMEOUT 900)
add_library(blocker SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/blocker.c)
target_compile_options(blocker PRIVATE -O1 -g -fno-omit-frame-pointer)
add_dependencies(test_servers blocker)
