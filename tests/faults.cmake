# Faults and hostile conditions (tests/test_faults.c): fork storms, thread
# churn, signals, exit paths, bad input, full and read-only disks, file
# safety, setuid.  Real programs under LD_PRELOAD.
elmon_fixture(fault_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/fault_fix.c)
target_link_libraries(fault_fix PRIVATE dl)
add_library(fault_env SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/fault_env.c)
set_target_properties(fault_env PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
elmon_check_test(test_faults SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_faults.c
  DEPENDS fault_fix fault_env loopfix TIMEOUT 600)
