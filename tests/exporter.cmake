# Suites of the OTLP exporter (exporter/, preload/export_glue.c): pure units
# on strings and bytes, then real hosts exporting to a local receiver
# (tests/otlp-receiver, Node.js) that decodes with the official protos.
if(TARGET elmon_exporter_core)
  elmon_check_test(test_export_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_export_config.c
    LIBS elmon_exporter_core elmon_core)
  elmon_check_test(test_export_encode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_export_encode.c
    LIBS elmon_exporter_core elmon_core)
  elmon_check_test(test_export_otlp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_export_otlp.c
    DEPENDS loopfix elmon_exporter TIMEOUT 900)
  target_compile_definitions(test_export_otlp PRIVATE ELMON_LIB_DIR="${CMAKE_BINARY_DIR}/lib")
endif()

# scripts/bench-export's measuring program.
if(TARGET elmon_exporter_core)
  add_executable(export_bench ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/export_bench.c)
  target_link_libraries(export_bench PRIVATE elmon_exporter_core elmon_core pthread)
endif()
