# Runs the `supcon` program with arguments that must fail, and checks how it
# fails: exit status 1 or 2 (not 0, not a crash) and exactly one line on
# stderr that starts with "supcon: " and matches EXPECT. (A command may have
# printed results on stdout before failing, e.g. before writing a plot.)
#   cmake -DSUPCON=<program> -DARGS="a|b|c" -DEXPECT=<regex> -P expect_error.cmake
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${SUPCON} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc MATCHES "^[12]$")
  message(FATAL_ERROR "expected exit status 1 or 2, got '${rc}'\nstderr: ${err}")
endif()
string(REGEX MATCHALL "\n" newlines "${err}")
list(LENGTH newlines lines)
if(NOT lines EQUAL 1 OR NOT err MATCHES "^supcon: ")
  message(FATAL_ERROR "expected one line 'supcon: ...' on stderr, got:\n${err}")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not match '${EXPECT}':\n${err}")
endif()
message(STATUS "failed as expected: ${err}")
