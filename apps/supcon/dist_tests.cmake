# `supcon train` under mpirun on the tiny IDX data (testing/dist_train.sh):
# K ranks end with the weights of one process with the same global batch,
# and a rank that dies or hangs ends the job with a message instead of a hang.
add_executable(supcon_ckpt_close ${CMAKE_CURRENT_SOURCE_DIR}/testing/ckpt_close.cpp)
target_link_libraries(supcon_ckpt_close PRIVATE supcon::supcon supcon_project_options)

find_program(SUPCON_DIST_BASH bash)
if(SUPCON_DIST_BASH)
  set(dist_env "OMP_NUM_THREADS=1")
  if(SUPCON_SANITIZE MATCHES address)
    list(APPEND dist_env "ASAN_OPTIONS=detect_leaks=0")  # Open MPI's allocations at exit
  endif()
  foreach(k 2 3)
    add_test(NAME cli_dist_train_${k}_ranks_match_one_process
      COMMAND ${SUPCON_DIST_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/testing/dist_train.sh match ${k}
              $<TARGET_FILE:supcon_cli> $<TARGET_FILE:supcon_ckpt_close> ${MPIEXEC_EXECUTABLE}
              ${PROJECT_SOURCE_DIR}/tests/data/train ${SUPCON_CLI_OUT}/dist_match_${k})
    set_tests_properties(cli_dist_train_${k}_ranks_match_one_process PROPERTIES
      PASS_REGULAR_EXPRESSION "weights of ${k} ranks match one process" ENVIRONMENT "${dist_env}" TIMEOUT 300)
  endforeach()
  foreach(fault exit hang)
    add_test(NAME cli_dist_train_rank_${fault}_ends_the_job
      COMMAND ${SUPCON_DIST_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/testing/dist_train.sh ${fault} 2
              $<TARGET_FILE:supcon_cli> - ${MPIEXEC_EXECUTABLE}
              ${PROJECT_SOURCE_DIR}/tests/data/train ${SUPCON_CLI_OUT}/dist_${fault})
    set_tests_properties(cli_dist_train_rank_${fault}_ends_the_job PROPERTIES
      PASS_REGULAR_EXPRESSION "the job ended with status [1-9][0-9]* after" ENVIRONMENT "${dist_env}" TIMEOUT 120)
  endforeach()
endif()
