#!/usr/bin/env bash
# Ctrl-C during `supcon train`: sends SIGINT to a running training and checks
# that it exits with status 130 and one line on stderr, having saved a
# checkpoint that `--resume` then continues to the end.
#   interrupt_train.sh SUPCON DATA_DIR OUT_DIR
set -u
supcon=$1 data=$2 out=$3
rm -rf "$out"
"$supcon" train --data mnist --data-dir "$data" --method supcon --width 2 --epochs 400 \
  --batch-size 32 --monitor 0 --out "$out" >/dev/null 2>"$out.err" &
pid=$!
# Wait for the first epoch's checkpoint, so the run is surely inside the loop.
for _ in $(seq 1 600); do
  [ -f "$out/checkpoint.ckpt" ] && break
  sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || { echo "expected exit status 130, got $rc"; cat "$out.err"; exit 1; }
grep -q "^supcon: interrupted at epoch .*checkpoint saved to .*checkpoint.ckpt" "$out.err" ||
  { echo "unexpected stderr:"; cat "$out.err"; exit 1; }
# The progress bar is not live (stderr is a file), so the interrupt line is the last one.
tail -n 1 "$out.err" | grep -q "^supcon: interrupted" || { cat "$out.err"; exit 1; }
[ -f "$out/metrics.csv" ] || { echo "metrics.csv is missing"; exit 1; }
"$supcon" eval --checkpoint "$out/checkpoint.ckpt" --probe /nonexistent 2>&1 | grep -q "nonexistent" ||
  { echo "the saved checkpoint does not load"; exit 1; }
echo "interrupted and saved: $(tail -n 1 "$out.err")"
