gs_unit_test(test_web SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_web.c LIBS gs_web)
gs_unit_test(test_ws SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ws.c LIBS gs_web)
# TLS: the client side of the test uses OpenSSL (libssl-dev, which libwebsockets-dev needs too)
pkg_check_modules(OPENSSL IMPORTED_TARGET openssl)
if(OPENSSL_FOUND)
  gs_unit_test(test_web_tls SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_web_tls.c
               LIBS gs_web PkgConfig::OPENSSL)
endif()
