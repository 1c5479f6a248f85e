# tests/bridges/interop.cmake - the remote-worker bridge against programs of other makes (included by
# tests/CMakeLists.txt when the examples are built).

# A Majordomo worker and client written from RFC 7 with pyzmq (the guide's worker style: one address
# frame, then the empty delimiter), each through ztwist-broker with ztwist's counterpart.
add_test(NAME bridges/guide_interop COMMAND /usr/bin/python3
  ${CMAKE_CURRENT_SOURCE_DIR}/bridges/guide_interop.py $<TARGET_FILE:ztwist_broker>
  $<TARGET_FILE:echo_worker> $<TARGET_FILE:remote_client>)
set_tests_properties(bridges/guide_interop PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
  LABELS "bridges;threads")

# CURVE certificates in czmq's format, both ways: this suite links czmq to make and read them.
zt_add_test(bridges curve THREADS TIMEOUT 120)
target_link_libraries(test_bridges_curve PRIVATE PkgConfig::CZMQ PkgConfig::ZMQ)

# The same between processes: certificates made by a czmq program with ztwist-broker, echo_worker
# and remote_client, and ztwist-broker --keygen's read by that program.
add_executable(test_bridges_czmq_cert bridges/czmq_cert.c)
target_link_libraries(test_bridges_czmq_cert PRIVATE PkgConfig::CZMQ PkgConfig::ZMQ)
add_test(NAME bridges/czmq_certs COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bridges/czmq_certs.sh
  $<TARGET_FILE:ztwist_broker> $<TARGET_FILE:echo_worker> $<TARGET_FILE:remote_client>
  $<TARGET_FILE:test_bridges_czmq_cert>)
set_tests_properties(bridges/czmq_certs PROPERTIES TIMEOUT 120 LABELS "bridges;threads")
