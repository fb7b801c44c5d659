#!/usr/bin/env bash
# Side by side on one machine: SmolLM2-135M training tokens/s and peak RSS, batch 4 x 256 tokens,
# full fine-tuning and LoRA r8 (q, v), AdamW, float32, 2 threads:
#   - labor: the `finetune_step` example of labor-model (release build), the real training loop
#     (right-padded batch, masked loss, global-norm clipping, AdamW) on rendered resumes
#     truncated to 256 tokens; median of the steps after the first;
#   - PyTorch: ../shared/anchors/torch_llm.py train (transformers, random ids, median of 5 steps).
# Needs scripts/make-smollm2-hf (the HF directory) and the anchors venv (see shared/anchors/README.md).
#
# Each side runs in its own process, one after the other. The speed of a shared machine drifts
# (by up to half within an hour here), so the script runs ROUNDS rounds (default 3), each with
# ours and PyTorch back to back for each mode (MODES, default "0 1": full, then LoRA), and
# summarises the ratio of each round's pair: their median, lowest and highest. RESULTS_FILE
# (default target/finetune-vs-torch.jsonl) gets every JSON line, tagged with its round.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}"
hf="${LABOR_SMOLLM2_HF:-$(./scripts/make-smollm2-hf | tail -n 1)}"
venv="${ANCHORS_VENV:-$HOME/.cache/anchors-venv}"
anchors="${ANCHORS:-../shared/anchors}"
steps="${LABOR_BENCH_STEPS:-4}"
rounds="${ROUNDS:-3}"
modes="${MODES:-0 1}"
results="${RESULTS_FILE:-target/finetune-vs-torch.jsonl}"
tok="${LABOR_SMOLLM2_TOKENIZER:-$(realpath "$anchors/../reference/smollm2/tokenizer.json")}"
# FINETUNE_STEP: a prebuilt binary of the example to use instead of building it.
if [ -z "${FINETUNE_STEP:-}" ]; then
  cargo build --release -q -p labor-model --example finetune_step
  FINETUNE_STEP="$CARGO_TARGET_DIR/release/examples/finetune_step"
fi
mkdir -p "$(dirname "$results")"
: > "$results"
# transformers reads the tokenizer from the model directory.
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
ln -s "$hf"/* "$tmp"/; ln -sf "$tok" "$tmp/tokenizer.json"
tag() { # round: tags each JSON line of stdin with the round, echoes and saves it
  "$venv/bin/python" -c '
import json, sys
for l in sys.stdin:
    if l.startswith("{"):
        d = json.loads(l); d["round"] = int(sys.argv[1]); d.setdefault("impl", "torch")
        print(json.dumps(d), flush=True)' "$1" | tee -a "$results"
}
for round in $(seq 1 "$rounds"); do
  for lora in $modes; do
    flag=""; [ "$lora" = 1 ] && flag="--lora"
    { "$FINETUNE_STEP" "$hf" "$tok" --steps "$steps" $flag || echo '{"impl": "labor", "error": "run failed"}'; } | tag "$round"
    { OMP_NUM_THREADS=2 "$venv/bin/python" "$anchors/torch_llm.py" train --model "$tmp" --batch 4 --seq 256 --runs 5 $flag \
        || echo '{"impl": "torch", "error": "run failed"}'; } | tag "$round"
  done
done
"$venv/bin/python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for lora in (False, True):
    pairs = {}
    for r in rows:
        if "tokens_per_s" in r and bool(r.get("lora")) == lora:
            pairs.setdefault(r["round"], {})[r["impl"]] = r
    ratios = [p["labor"]["tokens_per_s"] / p["torch"]["tokens_per_s"]
              for p in pairs.values() if "labor" in p and "torch" in p]
    if not ratios:
        continue
    mem = [p["labor"]["max_rss_gib"] / p["torch"]["max_rss_gib"] for p in pairs.values() if len(p) == 2]
    print(f"{'LoRA r8' if lora else 'full'}: labor/PyTorch tokens/s over {len(ratios)} rounds: "
          f"median {statistics.median(ratios):.2f}x, lowest {min(ratios):.2f}x, highest {max(ratios):.2f}x "
          f"({', '.join(f'{x:.2f}' for x in ratios)}); peak RSS ratio median {statistics.median(mem):.2f}")
PY
