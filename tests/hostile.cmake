# Hostile hosts (tests/test_hostile.c): descriptors closed, reused and
# dup2'ed under libelmon (C and CPython), seccomp filters, sleeps a capture
# signal could cut short, and output paths through symlinked directories,
# into procfs or to hard links.  Real programs under LD_PRELOAD.
elmon_fixture(hostile_fix ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/hostile_fix.c)
elmon_check_test(test_hostile SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_hostile.c
  DEPENDS hostile_fix loopfix TIMEOUT 300)
