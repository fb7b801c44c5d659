#!/usr/bin/env bash
# Side by side on one machine: SmolLM2-135M training tokens/s and peak RSS, batch 4 x 256 tokens,
# full fine-tuning and LoRA r8 (q, v), AdamW, float32, 2 threads:
#   - labor: `smollm2_train_throughput` (crates/labor-model/tests/finetune.rs), the real training
#     loop (right-padded batch, masked loss, global-norm clipping, AdamW) on rendered resumes
#     truncated to 256 tokens; median of the steps after the first;
#   - PyTorch: ../shared/anchors/torch_llm.py train (transformers, random ids, median of 5 steps).
# Needs scripts/make-smollm2-hf (the HF directory) and the anchors venv (see shared/anchors/README.md).
# Each side runs in its own process, one after the other; timings drift ±20% between runs on
# shared machines, so compare the ratios of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}"
hf="${LABOR_SMOLLM2_HF:-$(./scripts/make-smollm2-hf | tail -n 1)}"
venv="${ANCHORS_VENV:-$HOME/.cache/anchors-venv}"
anchors="${ANCHORS:-../shared/anchors}"
steps="${LABOR_BENCH_STEPS:-4}"
cargo test -p labor-model --test integration --no-run 2>/dev/null
for lora in 0 1; do
  LABOR_SMOLLM2_HF="$hf" LABOR_BENCH_LORA=$lora LABOR_BENCH_STEPS=$steps \
    cargo test -q -p labor-model --test integration smollm2_train_throughput -- --ignored --nocapture --test-threads=1 2>/dev/null \
    | grep '^{' || echo '{"impl": "labor", "error": "run failed"}'
  flag=""; [ "$lora" = 1 ] && flag="--lora"
  # transformers reads the tokenizer from the model directory.
  tmp="$(mktemp -d)"; ln -s "$hf"/* "$tmp"/; ln -sf "$(realpath "$anchors/../reference/smollm2/tokenizer.json")" "$tmp/tokenizer.json"
  OMP_NUM_THREADS=2 "$venv/bin/python" "$anchors/torch_llm.py" train --model "$tmp" --batch 4 --seq 256 --runs 5 $flag | grep '^{' || echo '{"impl": "torch", "error": "run failed"}'
  rm -rf "$tmp"
done
