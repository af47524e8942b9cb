# Unit suites of modules that had none (issue 11), one executable per
# module, linking elmon_core (the library minus wrap.c and elmon.c).
elmon_check_test(test_log SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_log.c LIBS elmon_core pthread TIMEOUT 120)
elmon_check_test(test_clock SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clock.c LIBS elmon_core pthread TIMEOUT 120)
elmon_check_test(test_registry SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_registry.c LIBS elmon_core pthread TIMEOUT 120)
elmon_check_test(test_fdtable SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fdtable.c LIBS elmon_core pthread TIMEOUT 120)
add_library(report_dso SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/report_dso.c)
set_target_properties(report_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
target_compile_options(report_dso PRIVATE -g -O1)
elmon_check_test(test_report SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_report.c LIBS elmon_core report_dso pthread
  TIMEOUT 120)
elmon_check_test(test_watchdog SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_watchdog.c LIBS elmon_core pthread TIMEOUT 120)
# The Python frame reader on a CPython 3.12 image built in the test
# process: its _PyRuntime and type objects are the executable's own,
# exported for dlsym.
elmon_check_test(test_pyread SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pyread.c LIBS elmon_core pthread TIMEOUT 120)
set_target_properties(test_pyread PROPERTIES ENABLE_EXPORTS ON)
# GOT redirection for elmon attach, on a full-RELRO library.
add_library(got_dso SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/got_dso.c)
set_target_properties(got_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
target_compile_options(got_dso PRIVATE -g -O1)
target_link_options(got_dso PRIVATE -Wl,-z,relro,-z,now)
# Lazy binding, loaded by the test with dlopen (late passes).
add_library(got_lazy MODULE ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/got_lazy.c)
set_target_properties(got_lazy PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR} PREFIX "")
target_compile_options(got_lazy PRIVATE -g -O1)
target_link_options(got_lazy PRIVATE -Wl,-z,lazy)
elmon_check_test(test_got SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_got.c LIBS elmon_core got_dso pthread TIMEOUT 60)
target_compile_definitions(test_got PRIVATE GOT_LAZY_PATH="$<TARGET_FILE:got_lazy>")
add_dependencies(test_got got_lazy)
