# Tests that run the built `supcon` program: success paths check the output
# with a regular expression, failure paths check for a non-zero exit and one
# line on stderr (testing/expect_error.cmake), and the PyTorch loss fixtures
# check that `supcon loss` reproduces PyTorch's value and gradient to 1e-9.

add_executable(supcon_npy_close ${CMAKE_CURRENT_SOURCE_DIR}/testing/npy_close.cpp)
target_link_libraries(supcon_npy_close PRIVATE supcon::supcon supcon_project_options)

set(SUPCON_CLI_DATA ${PROJECT_SOURCE_DIR}/tests/data/cli)
set(SUPCON_CLI_OUT ${CMAKE_CURRENT_BINARY_DIR}/cli_test_output)
file(MAKE_DIRECTORY ${SUPCON_CLI_OUT})

# supcon_cli_test(NAME REGEX ARGS...): `supcon ARGS...` succeeds and prints REGEX.
function(supcon_cli_test name regex)
  add_test(NAME cli_${name} COMMAND supcon_cli ${ARGN} WORKING_DIRECTORY ${SUPCON_CLI_OUT})
  set_tests_properties(cli_${name} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}"
                       ENVIRONMENT "OMP_NUM_THREADS=2")
endfunction()

# supcon_cli_error_test(NAME REGEX ARGS...): `supcon ARGS...` fails with one line matching REGEX.
function(supcon_cli_error_test name regex)
  string(REPLACE ";" "|" joined "${ARGN}")
  add_test(NAME cli_${name}
    COMMAND ${CMAKE_COMMAND} -DSUPCON=$<TARGET_FILE:supcon_cli> "-DARGS=${joined}" "-DEXPECT=${regex}"
            -P ${CMAKE_CURRENT_SOURCE_DIR}/testing/expect_error.cmake
    WORKING_DIRECTORY ${SUPCON_CLI_OUT})
endfunction()

set(F ${SUPCON_CLI_DATA}/features.npy)
set(L ${SUPCON_CLI_DATA}/labels.npy)

# ---- supcon loss ----
supcon_cli_test(loss_summary "SupCon L_out = [0-9.]+.*4 samples x 2 views x 3 dims.*8 \\(8 with positives\\)"
                loss --features ${F} --labels ${L})
supcon_cli_test(loss_json "\"anchors\":8,\"anchors_with_positives\":8.*\"loss\":[0-9.e-]+.*\"variant\":\"in\""
                loss --features ${F} --labels ${L} --variant in --json)
supcon_cli_test(loss_mask_float_fused "\"implementation\":\"fused\".*\"pairing\":\"mask\".*\"precision\":\"float\""
                loss --features ${SUPCON_CLI_DATA}/features_f64.npy --mask ${SUPCON_CLI_DATA}/mask.npy
                --precision float --implementation fused --json)
supcon_cli_test(loss_one_view "4 samples x 1 views x 3 dims.*4 \\(4 with positives\\)"
                loss --features ${SUPCON_CLI_DATA}/features_2d.npy --labels ${L})
supcon_cli_test(loss_simclr "SimCLR = [0-9.]+.*none \\(SimCLR" loss --features ${F} --variant simclr)
supcon_cli_test(loss_options "contrast one, denominator only-negatives, positives cap 2, no positives exclude"
                loss --features ${F} --labels ${L} --contrast-mode one --denominator only-negatives
                --positives-cap 2 --no-positives exclude --grad-out grad.npy --per-anchor-out per.npy)
supcon_cli_test(loss_help "--grad-out.*--json" loss --help)

supcon_cli_error_test(loss_missing_file "missing.npy: cannot open" loss --features ${SUPCON_CLI_DATA}/missing.npy)
supcon_cli_error_test(loss_malformed_npy "--features .*not_npy.npy: not a .npy file"
                      loss --features ${SUPCON_CLI_DATA}/not_npy.npy)
supcon_cli_error_test(loss_truncated_npy "truncated.npy: truncated data" loss --features ${SUPCON_CLI_DATA}/truncated.npy)
supcon_cli_error_test(loss_nan_features "features_nan.npy: contains NaN"
                      loss --features ${SUPCON_CLI_DATA}/features_nan.npy --labels ${L})
supcon_cli_error_test(loss_wrong_label_count "--labels .*has 3 labels but the features have 4 samples"
                      loss --features ${F} --labels ${SUPCON_CLI_DATA}/labels_short.npy)
supcon_cli_error_test(loss_float_labels "--labels .*labels must be int32 or int64"
                      loss --features ${F} --labels ${SUPCON_CLI_DATA}/labels_float.npy)
supcon_cli_error_test(loss_labels_as_features "--features .*must be float32 or float64" loss --features ${L})
supcon_cli_error_test(loss_bad_mask "--mask .*entries must be 0 or 1"
                      loss --features ${F} --mask ${SUPCON_CLI_DATA}/mask_bad.npy)
supcon_cli_error_test(loss_negative_temperature "--temperature must be positive" loss --features ${F} --temperature -1)
supcon_cli_error_test(loss_nan_temperature "--temperature must be positive" loss --features ${F} --temperature nan)
supcon_cli_error_test(loss_text_temperature "--temperature" loss --features ${F} --temperature warm)
supcon_cli_error_test(loss_bad_base_temperature "--base-temperature must be positive"
                      loss --features ${F} --base-temperature 0)
supcon_cli_error_test(loss_bad_denominator "--denominator: some not in" loss --features ${F} --denominator some)
supcon_cli_error_test(loss_bad_variant "--variant: outside not in" loss --features ${F} --variant outside)
supcon_cli_error_test(loss_labels_and_mask "--labels excludes --mask"
                      loss --features ${F} --labels ${L} --mask ${SUPCON_CLI_DATA}/mask.npy)
supcon_cli_error_test(loss_simclr_with_labels "--variant simclr.*do not pass --labels"
                      loss --features ${F} --variant simclr --labels ${L})
supcon_cli_error_test(loss_bad_cap "--positives-cap must be a multiple of the 2 views"
                      loss --features ${F} --labels ${L} --positives-cap 3)
supcon_cli_error_test(loss_no_features "--features is required" loss --labels ${L})
supcon_cli_error_test(loss_unwritable_grad "--grad-out|/nonexistent-dir/g.npy"
                      loss --features ${F} --grad-out /nonexistent-dir/g.npy)

# ---- supcon compare ----
supcon_cli_test(compare_generated "L_out .*L_in .*SimCLR .*only-negatives.*check: fused equals reference.*PASS"
                compare --batch 12 --views 2 --dim 8 --classes 3 --seed 1)
supcon_cli_test(compare_given "on .*features.npy.*check: fused equals reference.*PASS"
                compare --features ${F} --labels ${L} --temperature 0.5)
supcon_cli_test(compare_help "--classes" compare --help)
supcon_cli_error_test(compare_bad_batch "--batch must be >= 1" compare --batch 0)
supcon_cli_error_test(compare_labels_without_features "--labels requires --features" compare --labels ${L})

# ---- supcon jensen ----
supcon_cli_test(jensen_random "\\| 2 \\| [0-9.]+ \\| [0-9.]+ .*Jensen bound holds on every anchor.*PASS"
                jensen --batches 3 --batch 8 --dim 6 --classes 2 --svg jensen.svg)
supcon_cli_test(jensen_given "given batch .*features.npy: L_out [0-9.]+, L_in [0-9.]+.*PASS"
                jensen --batches 2 --batch 6 --features ${F} --labels ${L})
supcon_cli_test(jensen_help "--svg" jensen --help)
supcon_cli_error_test(jensen_bad_temperature "--temperature must be positive" jensen --temperature 0)
supcon_cli_error_test(jensen_unwritable_svg "/nonexistent-dir/j.svg" jensen --batches 1 --svg /nonexistent-dir/j.svg)

# ---- supcon loss reproduces the PyTorch fixtures of the losses ----
set(SUPCON_LOSS_CASES ${PROJECT_SOURCE_DIR}/tests/data/losses/cases.txt)
if(EXISTS ${SUPCON_LOSS_CASES})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${SUPCON_LOSS_CASES})
  file(STRINGS ${SUPCON_LOSS_CASES} cases REGEX "^[^#]")
  foreach(case ${cases})
    string(REGEX MATCH "^[^ ]+" name "${case}")
    add_test(NAME cli_pytorch_${name}
      COMMAND ${CMAKE_COMMAND} -DSUPCON=$<TARGET_FILE:supcon_cli> -DCHECK=$<TARGET_FILE:supcon_npy_close>
              -DDATA=${PROJECT_SOURCE_DIR}/tests/data/losses -DOUT=${SUPCON_CLI_OUT}/pytorch
              "-DCASE=${case}" -DRTOL=1e-9 -P ${CMAKE_CURRENT_SOURCE_DIR}/testing/check_fixture.cmake)
  endforeach()
endif()
