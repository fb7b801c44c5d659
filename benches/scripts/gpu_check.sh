#!/usr/bin/env bash
# The GPU paths after a change, in one short run on one NVIDIA GPU (about 5 minutes):
#   1. the GPU tests of labor-model (`tests/gpu.rs`: forward and cache, scoring and the trie
#      distribution, gradients, LoRA and CAREER gradients, CAREER, a fine-tuning loss curve,
#      each against the CPU) on cuda and on wgpu;
#   2. the pipeline on the GPU: a small synthetic panel, a language model trained from scratch
#      and a CAREER model trained with BURN_DEVICE=cuda, then scored and predicted on the CPU,
#      on `--devices cuda:0` and on `--devices cuda:0,cuda:0` (two shards on one GPU), with the
#      files compared (identical shards; the CPU within TF32's error), and `labor eval` of them.
#
#   LABOR=path/to/labor GPU_TESTS=path/to/integration-test-binary RESULTS=dir \
#     benches/scripts/gpu_check.sh
#
# Both binaries built with the GPU features (docs/gpu.md):
#   cargo build --release -p labor-cli --bin labor --features labor-cli/wgpu,labor-cli/cuda
#   cargo test --release -p labor-model --features wgpu,cuda --test integration --no-run
# CUDA needs the driver and NVRTC where it runs (CUDA_PATH, LD_LIBRARY_PATH); wgpu a Vulkan
# loader and driver (with NVIDIA's driver, the GL vendor-neutral libraries too: docs/gpu.md).
# The test binary reads fixtures through the path of the checkout it was built in: run this from
# a checkout at that path, or set BUILD_ROOT to it and a link is made. PYTHON (default python3) needs pyarrow for the comparisons. A dry run on
# a CPU: GPU_TESTS= TRAIN_DEVICE=flex ONE=flex TWO=flex,flex.
set -uo pipefail
L="$LABOR"
TRAIN_DEVICE="${TRAIN_DEVICE:-cuda}" ONE="${ONE:-cuda:0}" TWO="${TWO:-cuda:0,cuda:0}"
R="${RESULTS:-target/gpu-check}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$R"
if [ -n "${BUILD_ROOT:-}" ] && [ ! -e "$BUILD_ROOT" ]; then ln -s "$PWD" "$BUILD_ROOT"; fi
step() { echo "== $* ($SECONDS s)"; }

for backend in cuda wgpu; do
  [ -n "${GPU_TESTS:-}" ] || break
  step "gpu tests, $backend"
  LABOR_TEST_GPU=$backend timeout 240 "$GPU_TESTS" gpu:: --test-threads 1 --nocapture 2>&1 |
    tail -n 40
done

step "data"
$L synth --workers 400 --seed 0 --out "$R/panel.parquet" --truth "$R/truth.parquet"
$L split --panel "$R/panel.parquet" --out-dir "$R/split"
$L render --panel "$R/split/test.parquet" --out "$R/test.jsonl"

step "language model from scratch on $TRAIN_DEVICE"
BURN_DEVICE=$TRAIN_DEVICE timeout 240 $L finetune --base scratch --train "$R/split/train.parquet" \
  --valid "$R/split/valid.parquet" --out "$R/lm" --epochs 1 --max-valid-docs 40 2>&1 | tail -n 6
step "CAREER on $TRAIN_DEVICE"
BURN_DEVICE=$TRAIN_DEVICE timeout 240 $L train --kind career --train "$R/split/train.parquet" \
  --valid "$R/split/valid.parquet" --epochs 3 --out "$R/career" 2>&1 | tail -n 3

for tag in cpu one two; do
  d=flex; [ $tag = one ] && d=$ONE; [ $tag = two ] && d=$TWO
  step "score and predict on $d"
  timeout 240 $L score --model "$R/lm/best" --texts "$R/test.jsonl" --constrained --devices "$d" \
    --out "$R/score-$tag.parquet" --name "lm-$tag" 2>&1 | tail -n 1
  timeout 240 $L predict --model "$R/career" --panel "$R/split/test.parquet" --devices "$d" \
    --out "$R/career-$tag.parquet" --name "career-$tag" 2>&1 | tail -n 1
done

step "compare"
"$PYTHON" - "$R" <<'EOF'
import sys, pyarrow.parquet as pq
r = sys.argv[1]
for kind in ["score", "career"]:
    lp = {t: pq.read_table(f"{r}/{kind}-{t}.parquet").column("log_prob").to_pylist()
          for t in ["cpu", "one", "two"]}
    same = lp["one"] == lp["two"]
    diff = max(abs(a - b) for a, b in zip(lp["cpu"], lp["one"]))
    n = len(lp["cpu"])
    mean = lambda v: -sum(v) / len(v)
    print(f"{kind}: {n} targets; one device vs two shards identical: {same}; "
          f"largest |cpu - one device| {diff:.2e}; mean nats cpu {mean(lp['cpu']):.5f} "
          f"one device {mean(lp['one']):.5f}")
EOF
step "eval"
$L eval --predictions "$R/truth.parquet" "$R/career-one.parquet" "$R/score-one.parquet" \
  --panel "$R/split/test.parquet" --resamples 200 --out "$R/eval" 2>&1 | tail -n 12
$L eval --predictions "$R/score-one.parquet" --targets changes --resamples 200 \
  --out "$R/eval-changes" 2>&1 | tail -n 4
step "done"
