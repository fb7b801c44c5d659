#!/usr/bin/env bash
# Side by side on one machine: SmolLM2-135M training tokens/s and peak RSS, batch 4 x 256 tokens,
# full fine-tuning and LoRA r8 (q, v), AdamW, float32, 2 threads:
#   - labor: the `finetune_step` example of labor-model (release build), the real training loop
#     (right-padded batch, masked loss, global-norm clipping, AdamW) on rendered resumes
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
tok="${LABOR_SMOLLM2_TOKENIZER:-$(realpath "$anchors/../reference/smollm2/tokenizer.json")}"
# FINETUNE_STEP: a prebuilt binary of the example to use instead of building it.
if [ -z "${FINETUNE_STEP:-}" ]; then
  cargo build --release -q -p labor-model --example finetune_step
  FINETUNE_STEP="$CARGO_TARGET_DIR/release/examples/finetune_step"
fi
for lora in 0 1; do
  flag=""; [ "$lora" = 1 ] && flag="--lora"
  "$FINETUNE_STEP" "$hf" "$tok" --steps "$steps" $flag | grep '^{' || echo '{"impl": "labor", "error": "run failed"}'
  # transformers reads the tokenizer from the model directory.
  tmp="$(mktemp -d)"; ln -s "$hf"/* "$tmp"/; ln -sf "$tok" "$tmp/tokenizer.json"
  OMP_NUM_THREADS=2 "$venv/bin/python" "$anchors/torch_llm.py" train --model "$tmp" --batch 4 --seq 256 --runs 5 $flag | grep '^{' || echo '{"impl": "torch", "error": "run failed"}'
  rm -rf "$tmp"
done
