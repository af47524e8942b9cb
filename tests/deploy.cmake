# Checks of deploy/: the Prometheus recording and alerting rules load, pass
# their promtool unit tests (also rewritten for the default metric prefix),
# and planted errors fail them (tests/prometheus_rules.sh; promtool from
# Debian's prometheus, scripts/install-deps).
add_test(NAME prometheus_rules COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/prometheus_rules.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(prometheus_rules PROPERTIES TIMEOUT 120)
