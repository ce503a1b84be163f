# Tests of `supcon model` and `supcon forward` (uses the helpers of tests.cmake).
# The forward test runs the PyTorch fixture of tests/data/models (written by
# tools/make_model_fixtures.py) and compares with PyTorch's evaluation-mode
# output to 1e-4 relative.

set(M ${PROJECT_SOURCE_DIR}/tests/data/models)
set(R18 ${M}/resnet18_supcon_mlp)
set(R50 ${M}/resnet50_ce_imagenet)
set(R18_ARGS --arch resnet18 --width 4 --in-channels 3 --kind supcon --head mlp --feat-dim 8)
set(R50_ARGS --arch resnet50 --width 2 --in-channels 1 --kind ce --num-classes 5 --stem imagenet)

# ---- supcon model ----
supcon_cli_test(model_resnet18_ce "encoder.layer4.1 +BasicBlock\\(512 -> 512, stride 1\\).*parameters: 11,173,962"
                model --arch resnet18 --kind ce --num-classes 10)
supcon_cli_test(model_resnet18_mlp "head.2 +Linear\\(512, 128\\).*parameters: 11,497,152"
                model --arch resnet18)
supcon_cli_test(model_resnet50_imagenet "maxpool.*parameters: 25,557,032\nGFLOPs per image: 8.178"
                model --arch resnet50 --kind ce --num-classes 1000 --stem imagenet --image-size 224)
supcon_cli_test(model_grayscale_width "encoder.conv1 +Conv2d\\(1, 16, k=3, s=1, p=1\\) +16 x 28 x 28"
                model --arch resnet34 --in-channels 1 --width 16 --image-size 28)
supcon_cli_error_test(model_unknown_arch "--arch: resnet19 not in" model --arch resnet19)
supcon_cli_error_test(model_bad_width "--width" model --width 0)
supcon_cli_error_test(model_bad_image_size "--image-size" model --image-size 0)
supcon_cli_error_test(model_bad_stem "--stem: vgg not in" model --stem vgg)

# ---- supcon forward ----
foreach(c r18 r50)
  string(TOUPPER ${c} C)
  add_test(NAME cli_forward_${c}_run
    COMMAND supcon_cli forward ${${C}_ARGS} --weights ${${C}}/weights --input ${${C}}/input.npy
            --output ${SUPCON_CLI_OUT}/forward_${c}.npy --batch-size 3
    WORKING_DIRECTORY ${SUPCON_CLI_OUT})
  set_tests_properties(cli_forward_${c}_run PROPERTIES FIXTURES_SETUP forward_${c}
                       ENVIRONMENT "OMP_NUM_THREADS=2")
  add_test(NAME cli_forward_${c}_matches_pytorch
    COMMAND supcon_npy_close ${${C}}/eval_output.npy ${SUPCON_CLI_OUT}/forward_${c}.npy 1e-4)
  set_tests_properties(cli_forward_${c}_matches_pytorch PROPERTIES FIXTURES_REQUIRED forward_${c})
endforeach()
add_test(NAME cli_forward_features_run
  COMMAND supcon_cli forward ${R18_ARGS} --weights ${R18}/weights --input ${R18}/input.npy
          --output ${SUPCON_CLI_OUT}/forward_features.npy --features
  WORKING_DIRECTORY ${SUPCON_CLI_OUT})
set_tests_properties(cli_forward_features_run PROPERTIES FIXTURES_SETUP forward_features)
add_test(NAME cli_forward_features_match_pytorch
  COMMAND supcon_npy_close ${R18}/eval_features.npy ${SUPCON_CLI_OUT}/forward_features.npy 1e-4)
set_tests_properties(cli_forward_features_match_pytorch PROPERTIES FIXTURES_REQUIRED forward_features)

# Failure paths: each names the file or the option.
set(FWD forward ${R18_ARGS} --output ${SUPCON_CLI_OUT}/unused.npy)
supcon_cli_error_test(forward_missing_weights "no_such_dir: weights directory does not exist"
                      ${FWD} --weights no_such_dir --input ${R18}/input.npy)
supcon_cli_error_test(forward_wrong_arch "weights do not match the model: missing encoder.layer1.2"
                      forward --arch resnet34 --width 4 --weights ${R18}/weights --input ${R18}/input.npy
                      --output ${SUPCON_CLI_OUT}/unused.npy)
supcon_cli_error_test(forward_wrong_width "encoder.conv1.weight.npy: shape \\(4, 3, 3, 3\\) does not match"
                      forward --arch resnet18 --width 8 --feat-dim 8 --weights ${R18}/weights
                      --input ${R18}/input.npy --output ${SUPCON_CLI_OUT}/unused.npy)
supcon_cli_error_test(forward_wrong_head "unexpected head.0.bias"
                      forward --arch resnet18 --width 4 --head linear --feat-dim 8 --weights ${R18}/weights
                      --input ${R18}/input.npy --output ${SUPCON_CLI_OUT}/unused.npy)
supcon_cli_error_test(forward_wrong_channels "input.npy: input has 1 channels but --in-channels is 3"
                      ${FWD} --weights ${R18}/weights --input ${R50}/input.npy)
supcon_cli_error_test(forward_wrong_rank "train_dy.npy: input must be \\(N, C, H, W\\)"
                      ${FWD} --weights ${R18}/weights --input ${R18}/train_dy.npy)
supcon_cli_error_test(forward_nan_input "nan_input.npy: contains NaN"
                      ${FWD} --weights ${R18}/weights --input ${M}/nan_input.npy)
supcon_cli_error_test(forward_missing_input "no_such.npy: cannot open"
                      ${FWD} --weights ${R18}/weights --input no_such.npy)
