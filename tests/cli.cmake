# Suites of the elmon command (cli/) and of the live stats file
# (preload/stats.c).  Every test name contains "cli".
if(TARGET elmon_cli)
  set(ELMON_CLI_TEST_SOURCES ${PROJECT_SOURCE_DIR}/cli/json.c ${ELMON_COMMON_SOURCES})

  elmon_check_test(test_cli_run
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_run.c ${ELMON_CLI_TEST_SOURCES}
    DEPENDS loopfix elmon_cli TIMEOUT 600)
  elmon_check_test(test_cli_live
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_live.c ${ELMON_CLI_TEST_SOURCES}
    DEPENDS elmon_cli TIMEOUT 600)
  elmon_check_test(test_cli_report
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_report.c ${ELMON_CLI_TEST_SOURCES}
    DEPENDS loopfix elmon_cli TIMEOUT 300)
  foreach(t test_cli_run test_cli_live test_cli_report)
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/cli ${ELMON_COMMON_DIR})
    target_compile_definitions(${t} PRIVATE ELMON_CLI="$<TARGET_FILE:elmon_cli>")
  endforeach()

  add_test(NAME cli_top COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_top.sh
    $<TARGET_FILE:elmon_cli> $<TARGET_FILE:elmon> ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/cli_asyncio.py)
  set_tests_properties(cli_top PROPERTIES TIMEOUT 300)
  # The HTML report in Debian's chromium and the speedscope file against
  # its schema (tests/report-browser, npm packages from scripts/install-deps).
  add_test(NAME report_browser COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/report_browser.sh
    $<TARGET_FILE:elmon_cli> ${CMAKE_CURRENT_BINARY_DIR}/report_browser ${CMAKE_CURRENT_BINARY_DIR}/report_browser.png)
  set_tests_properties(report_browser PROPERTIES TIMEOUT 600)
  # elmon serve scraped by Debian's prometheus, with deploy/prometheus's rules.
  add_test(NAME serve_prometheus COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/serve_prometheus.py
    $<TARGET_FILE:elmon_cli> $<TARGET_FILE:elmon> ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/serve_prometheus)
  set_tests_properties(serve_prometheus PROPERTIES TIMEOUT 600)
  add_test(NAME cli_exit_table COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_exit_table.sh ${PROJECT_SOURCE_DIR})
  add_test(NAME cli_options COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_options.sh ${PROJECT_SOURCE_DIR}
    $<TARGET_FILE:elmon_cli>)
  add_test(NAME cli_install COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_install.sh
    ${CMAKE_BINARY_DIR} $<TARGET_FILE:loopfix>)
  set_tests_properties(cli_install PROPERTIES TIMEOUT 300)
endif()

# elmon attach and detach on programs started without libelmon (a C epoll
# loop, its static and full-RELRO builds, CPython asyncio), and refusals.
if(TARGET elmon_cli)
  elmon_fixture(attach_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_fix.c)
  # The static build by the compiler alone, outside the build's flags: a
  # sanitizer build links every executable against the shared sanitizer
  # runtime, which a static link cannot take (and a static binary is
  # refused before anything of it runs).
  set(ATTACH_FIX_STATIC ${CMAKE_CURRENT_BINARY_DIR}/attach_fix_static)
  add_custom_command(OUTPUT ${ATTACH_FIX_STATIC}
    COMMAND ${CMAKE_C_COMPILER} -O1 -g -static -pthread -DATTACH_FIX_STATIC -o ${ATTACH_FIX_STATIC}
            ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_fix.c
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_fix.c
    COMMENT "attach_fix_static: a statically linked attach_fix" VERBATIM)
  add_custom_target(attach_fix_static ALL DEPENDS ${ATTACH_FIX_STATIC})
  # Full RELRO: the GOT is read-only once relocated.
  elmon_fixture(attach_fix_now ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_fix.c)
  target_link_options(attach_fix_now PRIVATE -Wl,-z,relro,-z,now)
  # Loaded by attach_fix after the attach (late=PATH), lazily bound.
  add_library(attach_late MODULE ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_late.c)
  target_compile_options(attach_late PRIVATE -O1 -g)
  target_link_options(attach_late PRIVATE -Wl,-z,lazy)
  add_test(NAME cli_attach COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_attach.sh
    $<TARGET_FILE:elmon_cli> $<TARGET_FILE:elmon> $<TARGET_FILE:attach_fix> ${ATTACH_FIX_STATIC}
    ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_asyncio.py $<TARGET_FILE:attach_fix_now>
    ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_client.py ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_pyserver.py
    ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/attach_node.js $<TARGET_FILE:attach_late>)
  set_tests_properties(cli_attach PROPERTIES TIMEOUT 300)
endif()
