# Runs Doxygen on the API and fails when it prints any warning.
file(MAKE_DIRECTORY ${OUT_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -E env SUPCON_DOXYGEN_OUT=${OUT_DIR} ${DOXYGEN} Doxyfile
  WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "doxygen failed (${rc}): ${err}")
endif()
if(EXISTS ${OUT_DIR}/warnings.log)
  file(READ ${OUT_DIR}/warnings.log warnings)
endif()
if(err OR warnings)
  message(FATAL_ERROR "doxygen warnings:\n${err}${warnings}")
endif()
