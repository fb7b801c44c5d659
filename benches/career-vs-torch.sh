#!/usr/bin/env bash
# Side by side on one machine: CAREER training and forward tokens/s, batch 64 careers x 32 years,
# 335 states, in burn (the `career_step` program of labor-benches, release build) and in PyTorch
# (../shared/anchors/torch_career.py, 2 threads), for the paper's configuration (12 layers, width
# 192, 3 heads, FFN 768) and the small one (2 layers, width 64, 2 heads, FFN 256).
#
# Each side runs in its own process, one after the other. The speed of a shared machine drifts,
# so the script runs ROUNDS rounds (default 3), each with ours and PyTorch back to back for each
# size, and summarises the ratio of each round's pair: their median, lowest and highest.
# RESULTS_FILE (default target/career-vs-torch.jsonl) gets every JSON line, tagged with its
# round.
#
#   benches/career-vs-torch.sh     # PYTHON (default: the anchors venv), ANCHORS, CAREER_STEP,
#                                  # RUNS (timed steps per process), ROUNDS, SIZES ("paper small")
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}"
PYTHON="${PYTHON:-$HOME/.cache/anchors-venv/bin/python}"
anchors="${ANCHORS:-../shared/anchors}"
runs="${RUNS:-5}"
rounds="${ROUNDS:-3}"
sizes="${SIZES:-paper small}"
results="${RESULTS_FILE:-target/career-vs-torch.jsonl}"
# CAREER_STEP: a prebuilt binary of the program to use instead of building it.
if [ -z "${CAREER_STEP:-}" ]; then
  cargo build --release -q -p labor-benches --bin career_step
  CAREER_STEP="$CARGO_TARGET_DIR/release/career_step"
fi
mkdir -p "$(dirname "$results")"
: > "$results"
tag() { # round, implementation, size: tags each JSON line of stdin, echoes and saves it
  "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    if l.startswith("{"):
        d = json.loads(l); d.update(round=int(sys.argv[1]), impl=sys.argv[2], size=sys.argv[3])
        print(json.dumps(d), flush=True)' "$@" | tee -a "$results"
}
for round in $(seq 1 "$rounds"); do
  for size in $sizes; do
    torch_size=""
    [ "$size" = small ] && torch_size="--layers 2 --d 64 --heads 2 --ffn 256"
    "$CAREER_STEP" "$size" "$runs" | tag "$round" labor "$size"
    OMP_NUM_THREADS=2 "$PYTHON" "$anchors/torch_career.py" --threads 2 --runs "$runs" $torch_size \
      | tag "$round" torch "$size"
  done
done
"$PYTHON" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for size in dict.fromkeys(r["size"] for r in rows):
    for what in ("train", "forward"):
        pairs = {}
        for r in rows:
            if r["size"] == size:
                pairs.setdefault(r["round"], {})[r["impl"]] = r[what + "_tokens_per_s"]
        ratios = [p["labor"] / p["torch"] for p in pairs.values() if len(p) == 2]
        print(f"{size} {what}: labor/PyTorch tokens/s over {len(ratios)} rounds: median "
              f"{statistics.median(ratios):.2f}x, lowest {min(ratios):.2f}x, highest {max(ratios):.2f}x "
              f"({', '.join(f'{x:.2f}' for x in ratios)})")
PY
