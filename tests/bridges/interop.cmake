# tests/bridges/interop.cmake - the remote-worker bridge against programs of other makes (included by
# tests/CMakeLists.txt when the examples are built).

# A Majordomo worker and client written from RFC 7 with pyzmq (the guide's worker style: one address
# frame, then the empty delimiter), each through ztwist-broker with ztwist's counterpart.
add_test(NAME bridges/guide_interop COMMAND /usr/bin/python3
  ${CMAKE_CURRENT_SOURCE_DIR}/bridges/guide_interop.py $<TARGET_FILE:ztwist_broker>
  $<TARGET_FILE:echo_worker> $<TARGET_FILE:remote_client>)
set_tests_properties(bridges/guide_interop PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
  LABELS "bridges;threads")
