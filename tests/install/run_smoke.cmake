# Installs the library into a scratch prefix, then builds and runs a consumer
# project that finds it with find_package(supcon).
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${WORK_DIR}/lib;-G;${GENERATOR};-DSUPCON_BUILD_TESTS=OFF;-DSUPCON_BUILD_EXAMPLES=OFF;-DSUPCON_BUILD_CLI=OFF;-DCMAKE_INSTALL_PREFIX=${prefix}"
    "${CMAKE_COMMAND};--install;${WORK_DIR}/lib"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/install;-B;${WORK_DIR}/consumer;-G;${GENERATOR};-DCMAKE_PREFIX_PATH=${prefix}"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/consumer"
    "${WORK_DIR}/consumer/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install smoke test: '${step}' failed (${rc}):\n${out}\n${err}")
  endif()
endforeach()
if(NOT out MATCHES "supcon 0\\.1\\.0: find_package works")
  message(FATAL_ERROR "install smoke test: unexpected output: ${out}")
endif()
message(STATUS "${out}")
