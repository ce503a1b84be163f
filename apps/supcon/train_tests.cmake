# Tests of `supcon train`, `linear`, `eval`, `embed` on a tiny generated IDX
# data set (tools/make_train_cli_data.py): the success paths in order (each
# uses the previous one's checkpoint), the failure paths (one line on stderr),
# and Ctrl-C (testing/interrupt_train.sh).

set(TD ${PROJECT_SOURCE_DIR}/tests/data/train)
set(TOUT ${SUPCON_CLI_OUT}/train)
set(TINY --data mnist --data-dir ${TD} --width 2 --monitor 16)

supcon_cli_test(train_supcon "done: 2 epochs, final loss [0-9.]+"
                train ${TINY} --batch-size 32 --method supcon --epochs 2 --out ${TOUT}/supcon)
supcon_cli_test(train_resume_finished "done: 2 epochs" train --out ${TOUT}/supcon --resume)
supcon_cli_test(train_ce "training ce: resnet18 width 2, 64 images of mnist.*done: 1 epochs"
                train ${TINY} --batch-size 32 --method ce --epochs 1 --lr 0.05 --crop-scale 0.5 --out ${TOUT}/ce)
supcon_cli_test(linear "linear probe: top-1 [0-9.]+%, top-5 [0-9.]+% on 32 test images.*kNN \\(k = 200\\): top-1"
                linear --checkpoint ${TOUT}/supcon/checkpoint.ckpt --epochs 5 --out ${TOUT}/supcon)
supcon_cli_test(eval_probe "linear probe: top-1.*confusion matrix.*kNN \\(k = 200"
                eval --checkpoint ${TOUT}/supcon/checkpoint.ckpt --probe ${TOUT}/supcon/probe.ckpt
                --json ${TOUT}/eval.json)
supcon_cli_test(eval_ce "cross-entropy classifier: top-1 [0-9.]+%, top-5.*linear probe on the frozen encoder: top-1 [0-9.]+%"
                eval --checkpoint ${TOUT}/ce/checkpoint.ckpt)
supcon_cli_test(embed "wrote .*embedding.svg \\(32 test images\\)"
                embed --checkpoint ${TOUT}/ce/checkpoint.ckpt --out ${TOUT}/embedding.svg)
supcon_cli_test(embed_tsne "wrote .*tsne.svg \\(32 test images\\)"
                embed --checkpoint ${TOUT}/ce/checkpoint.ckpt --method tsne --perplexity 5
                --tsne-iterations 200 --out ${TOUT}/tsne.svg)
supcon_cli_error_test(embed_tsne_perplexity_too_large "--perplexity must be in .0, .N - 1. / 3 = 10.3"
                      embed --checkpoint ${TOUT}/ce/checkpoint.ckpt --method tsne --out ${TOUT}/x.svg)
set_tests_properties(cli_train_supcon PROPERTIES FIXTURES_SETUP train_supcon)
set_tests_properties(cli_train_ce PROPERTIES FIXTURES_SETUP train_ce)
set_tests_properties(cli_linear PROPERTIES FIXTURES_REQUIRED train_supcon FIXTURES_SETUP probe)
set_tests_properties(cli_train_resume_finished PROPERTIES FIXTURES_REQUIRED train_supcon)
set_tests_properties(cli_eval_probe PROPERTIES FIXTURES_REQUIRED "train_supcon;probe")
set_tests_properties(cli_eval_ce cli_embed cli_embed_tsne cli_embed_tsne_perplexity_too_large
                     PROPERTIES FIXTURES_REQUIRED train_ce)

supcon_cli_error_test(train_missing_dataset "Fashion-MNIST not found.*dataset-fashion-mnist.*--data-dir"
                      train --data-dir ${TD}/missing --out ${TOUT}/x)
supcon_cli_error_test(train_corrupt_data "train-images-idx3-ubyte: .*"
                      train --data mnist --data-dir ${TD}/bad --out ${TOUT}/x)
supcon_cli_error_test(train_negative_epochs "--epochs must be >= 1, got -1"
                      train ${TINY} --epochs -1 --out ${TOUT}/x)
supcon_cli_error_test(train_batch_zero "--batch-size must be >= 2, got 0"
                      train ${TINY} --batch-size 0 --out ${TOUT}/x)
supcon_cli_error_test(train_crop_scale_above_one "--crop-scale must be in .0, 1., got 1.5"
                      train ${TINY} --crop-scale 1.5 --out ${TOUT}/x)
supcon_cli_error_test(train_unknown_method "--method" train ${TINY} --method supcom --out ${TOUT}/x)
supcon_cli_error_test(train_unwritable_out "--out /proc/supcon: cannot create the directory"
                      train ${TINY} --out /proc/supcon)
supcon_cli_error_test(train_resume_nothing "checkpoint.ckpt: cannot open" train --out ${TOUT}/empty --resume)
supcon_cli_error_test(linear_damaged_checkpoint "not_a_checkpoint.ckpt: not a supcon checkpoint"
                      linear --checkpoint ${TD}/not_a_checkpoint.ckpt)
supcon_cli_error_test(eval_needs_probe "needs --probe" eval --checkpoint ${TOUT}/supcon/checkpoint.ckpt)
supcon_cli_error_test(linear_on_ce "cross-entropy model.*supcon eval" linear --checkpoint ${TOUT}/ce/checkpoint.ckpt)
# --device cuda: a build without CUDA refuses in one line; a CUDA build on a
# machine without a GPU (CI) quotes cudaGetDeviceCount, and with one it trains
if(SUPCON_CUDA_ENABLED)
  supcon_cli_test(train_cuda "--device cuda: no CUDA device \\(cudaGetDeviceCount|on the GPU.*done: 1 epochs"
                  train ${TINY} --batch-size 32 --epochs 1 --device cuda --out ${TOUT}/cuda)
else()
  supcon_cli_error_test(train_cuda_not_built "--device cuda: this build has no CUDA; configure with -DSUPCON_CUDA=ON"
                        train ${TINY} --device cuda --out ${TOUT}/x)
endif()
supcon_cli_error_test(train_unknown_device "--device: tpu not in .cpu,cuda." train ${TINY} --device tpu --out ${TOUT}/x)
set_tests_properties(cli_eval_needs_probe PROPERTIES FIXTURES_REQUIRED train_supcon)
set_tests_properties(cli_linear_on_ce PROPERTIES FIXTURES_REQUIRED train_ce)

find_program(SUPCON_BASH bash)
if(SUPCON_BASH)
  add_test(NAME cli_train_interrupt
    COMMAND ${SUPCON_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/testing/interrupt_train.sh
            $<TARGET_FILE:supcon_cli> ${TD} ${TOUT}/interrupted)
  set_tests_properties(cli_train_interrupt PROPERTIES PASS_REGULAR_EXPRESSION "interrupted and saved"
                       ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT 300)
endif()

# The main job on the tiny data: the table and report.html; run again, it
# resumes each method from its finished checkpoint instead of retraining.
set(TINY_DEMO demo --data mnist --data-dir ${TD} --width 2 --epochs 1 --batch-size 32 --out ${TOUT}/demo)
supcon_cli_test(demo_tiny "\\| ce \\| CE head \\|.*\\| supcon \\| linear probe \\|.*wrote .*report.html" ${TINY_DEMO})
supcon_cli_test(demo_resumes "== ce \\(resuming from .*== supcon \\(resuming from .*report.html" ${TINY_DEMO})
set_tests_properties(cli_demo_tiny PROPERTIES FIXTURES_SETUP demo_tiny)
set_tests_properties(cli_demo_resumes PROPERTIES FIXTURES_REQUIRED demo_tiny)
# --methods picks the runs and their order (here L_in against cross-entropy)
supcon_cli_test(demo_methods "== supcon-in.*== ce.*\\| supcon-in \\| linear probe \\|.*\\| ce \\| CE head \\|"
  demo --data mnist --data-dir ${TD} --width 2 --epochs 1 --batch-size 32 --methods supcon-in,ce
  --out ${TOUT}/demo_methods)
supcon_cli_error_test(demo_unknown_method "--methods: 'supcom' is not one of ce, supcon, supcon-in, simclr"
  demo --data mnist --data-dir ${TD} --methods ce,supcom --out ${TOUT}/demo_bad)
supcon_cli_error_test(demo_repeated_method "--methods: 'ce' is named twice"
  demo --data mnist --data-dir ${TD} --methods ce,supcon,ce --out ${TOUT}/demo_bad)
