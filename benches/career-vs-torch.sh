#!/usr/bin/env bash
# Side by side on one machine: CAREER training and forward tokens/s, batch 64 careers x 32 years,
# 335 states, in burn (the `career_step` program of labor-benches, release build) and in PyTorch
# (../shared/anchors/torch_career.py, 2 threads), for the paper's configuration (12 layers, width
# 192, 3 heads, FFN 768) and the small one (2 layers, width 64, 2 heads, FFN 256). Each side runs
# in its own process, one after the other; compare the ratios of one run.
#
#   benches/career-vs-torch.sh            # PYTHON (default: the anchors venv), ANCHORS, CAREER_STEP
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}"
PYTHON="${PYTHON:-$HOME/.cache/anchors-venv/bin/python}"
anchors="${ANCHORS:-../shared/anchors}"
runs="${RUNS:-5}"
# CAREER_STEP: a prebuilt binary of the program to use instead of building it.
if [ -z "${CAREER_STEP:-}" ]; then
  cargo build --release -q -p labor-benches --bin career_step
  CAREER_STEP="$CARGO_TARGET_DIR/release/career_step"
fi
"$CAREER_STEP" paper "$runs"
OMP_NUM_THREADS=2 "$PYTHON" "$anchors/torch_career.py" --threads 2 --runs "$runs"
"$CAREER_STEP" small "$runs"
OMP_NUM_THREADS=2 "$PYTHON" "$anchors/torch_career.py" --threads 2 --runs "$runs" --layers 2 --d 64 --heads 2 --ffn 256
