# Runs `supcon loss` on one case of the PyTorch loss fixtures
# (tests/data/losses/cases.txt, written by tools/make_loss_fixtures.py) with
# both implementations in double, and checks that the loss, the gradient
# (--grad-out) and the per-anchor losses (--per-anchor-out) reproduce the
# PyTorch values to RTOL.
#   cmake -DSUPCON=<program> -DCHECK=<supcon_npy_close> -DDATA=<dir> -DOUT=<dir>
#         -DCASE="<line of cases.txt>" -DRTOL=1e-9 -P check_fixture.cmake
separate_arguments(fields UNIX_COMMAND "${CASE}")
list(LENGTH fields n)
if(NOT n EQUAL 10)
  message(FATAL_ERROR "malformed case line (want 10 fields): ${CASE}")
endif()
list(GET fields 0 name)
list(GET fields 1 variant)
list(GET fields 2 temperature)
list(GET fields 3 base_temperature)
list(GET fields 4 contrast)
list(GET fields 5 denominator)
list(GET fields 6 cap)
list(GET fields 7 no_positives)
list(GET fields 8 has_labels)
list(GET fields 9 has_mask)
# The fixtures spell option values with underscores, the CLI with hyphens.
string(REPLACE "_" "-" denominator "${denominator}")
string(REPLACE "_" "-" no_positives "${no_positives}")

file(MAKE_DIRECTORY ${OUT})
foreach(impl reference fused)
  set(grad ${OUT}/${name}_${impl}_grad.npy)
  set(per ${OUT}/${name}_${impl}_per_anchor.npy)
  set(args loss --features ${DATA}/${name}_features.npy --variant ${variant}
      --temperature ${temperature} --base-temperature ${base_temperature} --contrast-mode ${contrast}
      --denominator ${denominator} --positives-cap ${cap} --no-positives ${no_positives}
      --precision double --implementation ${impl} --grad-out ${grad} --per-anchor-out ${per} --json)
  if(has_labels)
    list(APPEND args --labels ${DATA}/${name}_labels.npy)
  endif()
  if(has_mask)
    list(APPEND args --mask ${DATA}/${name}_mask.npy)
  endif()
  execute_process(COMMAND ${SUPCON} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "supcon ${args}\nfailed (${rc}): ${err}")
  endif()
  string(JSON loss GET "${out}" loss)
  foreach(check "${DATA}/${name}_loss.npy;${loss}" "${DATA}/${name}_grad.npy;${grad}"
                "${DATA}/${name}_per_anchor.npy;${per}")
    execute_process(COMMAND ${CHECK} ${check} ${RTOL} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message(STATUS "${impl}: ${out}${err}")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${name} (${impl}): the CLI does not reproduce PyTorch: ${out}${err}")
    endif()
  endforeach()
endforeach()
