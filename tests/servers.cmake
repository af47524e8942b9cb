# Issue 6: the servers people run, under libelmon.
elmon_check_test(test_servers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_servers.c TIMEOUT 900)
