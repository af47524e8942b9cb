# Issue 14: culprits on every runtime (common/culprit.c's per-runtime
# rules, interpret/symbolize.c's demangling and JIT names, record/
# capture.c's late answers): the machine's JVM and node, a C++ host, a JIT.
elmon_check_test(test_runtimes SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_runtimes.c TIMEOUT 900)
# Frame pointers in every build (the sanitizer builds too): the walk from
# the JIT code into call_jit follows rbp, as through a JVM's code.
elmon_fixture(jit_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/jit_fix.c -fno-omit-frame-pointer)
find_program(ELMON_CXX NAMES g++ c++ clang++)
if(ELMON_CXX)
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/cpp_host
    COMMAND ${ELMON_CXX} -O1 -g -fno-omit-frame-pointer -o ${CMAKE_CURRENT_BINARY_DIR}/cpp_host
            ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/cpp_host.cpp
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/cpp_host.cpp
    COMMENT "cpp_host built by the C++ compiler")
  add_custom_target(cpp_host DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/cpp_host)
  add_dependencies(test_runtimes cpp_host)
endif()
add_dependencies(test_runtimes jit_fix)
