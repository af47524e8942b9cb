# Suites of the core shim (preload/): units, then real programs under
# LD_PRELOAD.
elmon_fixture(loopfix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/loopfix.c)
elmon_fixture(nopoll ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/nopoll.c)

elmon_check_test(test_hist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_hist.c LIBS elmon_core)
elmon_check_test(test_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c LIBS elmon_core)
elmon_check_test(test_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_json.c LIBS elmon_core)
elmon_check_test(test_shim SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shim.c
  DEPENDS loopfix nopoll errnos errnos_fortify TIMEOUT 600)
add_test(NAME docs_tables COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/docs_tables.sh ${PROJECT_SOURCE_DIR})
add_test(NAME hot_path_contract COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/hot_path_contract.sh
  ${PROJECT_SOURCE_DIR} $<TARGET_FILE:elmon>)
# Who may include and declare what, by stage (tests/layering.sh).
add_test(NAME layering COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/layering.sh ${PROJECT_SOURCE_DIR})
elmon_fixture(errnos ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/errnos.c)
# The same program built with FORTIFY calls __poll_chk and __ppoll_chk.
elmon_fixture(errnos_fortify ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/errnos.c -O2 -D_FORTIFY_SOURCE=2)
elmon_check_test(test_hosts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_hosts.c TIMEOUT 600)
add_library(earlyctor SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/earlyctor.c)
add_dependencies(test_shim earlyctor)

# The loop model: loop identity, nested loops, complete span records, the
# descriptor count (tests/test_loops.c).
elmon_fixture(fdcount ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/fdcount.c)
if(TARGET elmon_cli)
  elmon_check_test(test_loops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_loops.c
    DEPENDS loopfix fdcount elmon_cli TIMEOUT 900)
  target_compile_definitions(test_loops PRIVATE ELMON_CLI="$<TARGET_FILE:elmon_cli>")
endif()
add_test(NAME tests_listed COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests_listed.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR})
