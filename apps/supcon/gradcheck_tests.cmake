# Tests of `supcon gradcheck` (uses the helpers of tests.cmake): the whole
# suite passes, --json is a well-formed array, one check or one group can be
# chosen, and an unknown name fails with one line that lists the valid ones.

# The whole suite: exit status 0 (checked first), then the report's lines.
add_test(NAME cli_gradcheck_all_exit_status COMMAND supcon_cli gradcheck --what all)
set_tests_properties(cli_gradcheck_all_exit_status PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
supcon_cli_test(gradcheck_all
                "PASS  linear .*PASS  batchnorm2d_eval .*PASS  bottleneck_projection .*PASS  resnet18_head .*PASS  cross_entropy_smoothing .*checks in [0-9.]+ s: [0-9]+ passed, 0 failed"
                gradcheck --what all)
supcon_cli_test(gradcheck_one "PASS  conv2d_3x3_s2_p1 +max rel error .*\n1 checks in [0-9.]+ s: 1 passed, 0 failed"
                gradcheck --what conv2d_3x3_s2_p1)
supcon_cli_test(gradcheck_list "linear +layers +Linear.*basic_block_projection +blocks .*supcon_in +losses "
                gradcheck --list)
supcon_cli_test(gradcheck_help "--what.*--json.*--list" gradcheck --help)

# --json: an array of {name, max_rel_error, tolerance, passed}, every check passed.
add_test(NAME cli_gradcheck_json
  COMMAND ${CMAKE_COMMAND} -DSUPCON=$<TARGET_FILE:supcon_cli> "-DARGS=gradcheck|--what|losses|--json"
          "-DFIELDS=name:STRING|max_rel_error:NUMBER|tolerance:NUMBER|passed:BOOLEAN" -DMIN=8
          -DTRUE_FIELD=passed -P ${CMAKE_CURRENT_SOURCE_DIR}/testing/check_json_array.cmake)
supcon_cli_test(gradcheck_json_names "^\\[\\{\"max_rel_error\":[0-9.e-]+,\"name\":\"basic_block_identity\",\"passed\":true"
                gradcheck --what blocks --json)

supcon_cli_error_test(gradcheck_unknown "--what: unknown check 'conv3d' \\(valid: all, layers, blocks, network, losses, linear, .*resnet18_head"
                      gradcheck --what conv3d)
