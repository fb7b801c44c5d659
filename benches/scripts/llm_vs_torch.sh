#!/usr/bin/env bash
# Side-by-side speed of our language-model path and Hugging Face transformers on PyTorch, on the
# same model, same machine, in one run (absolute timings drift between runs on shared machines;
# the ratios printed at the end are what we compare).
#
#   benches/scripts/llm_vs_torch.sh [MODEL]
#
# MODEL: a GGUF file or Hugging Face directory (default: the SmolLM2-135M GGUF that
# scripts/fetch-smollm2 downloads). Needs a Python with torch and transformers (PYTHON, default
# $HOME/.cache/anchors-venv/bin/python) and the reference script torch_llm.py (TORCH_LLM, default
# ../shared/anchors/torch_llm.py next to the checkout). Writes results to $OUT (default
# target/llm-vs-torch/).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-$HOME/.cache/labor/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
PYTHON="${PYTHON:-$HOME/.cache/anchors-venv/bin/python}"
TORCH_LLM="${TORCH_LLM:-../shared/anchors/torch_llm.py}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}"
OUT="${OUT:-$CARGO_TARGET_DIR/llm-vs-torch}"
mkdir -p "$OUT"
[ -e "$MODEL" ] || ./scripts/fetch-smollm2
# LABOR: a prebuilt `labor` binary to use instead of building one (release profile).
if [ -z "${LABOR:-}" ]; then
  cargo build --release -q -p labor-cli
  LABOR="$CARGO_TARGET_DIR/release/labor"
fi
L="$LABOR"

$L synth --preset nlsy79 --workers 40 --seed 5 --out "$OUT/panel.parquet" >/dev/null
$L render --template resume --panel "$OUT/panel.parquet" --out "$OUT/texts.jsonl" >/dev/null
$L render --template prompt-titles --panel "$OUT/panel.parquet" --out "$OUT/texts-titles.jsonl" >/dev/null

run() { # name, then the command; keeps the JSON line
  echo "== $1" >&2
  shift
  "$@" | tail -n 1
}
{
  run "ours forward b1x512" $L speed forward --model "$MODEL" --batch 1 --seq 512
  run "torch forward b1x512" "$PYTHON" "$TORCH_LLM" forward --model "$MODEL" --batch 1 --seq 512
  run "ours forward b8x256" $L speed forward --model "$MODEL" --batch 8 --seq 256 --runs 3
  run "torch forward b8x256" "$PYTHON" "$TORCH_LLM" forward --model "$MODEL" --batch 8 --seq 256 --runs 3
  run "ours score" $L speed score --model "$MODEL" --texts "$OUT/texts.jsonl" --limit 5 --runs 3
  run "torch score" "$PYTHON" "$TORCH_LLM" score --model "$MODEL" --texts "$OUT/texts.jsonl" --limit 5 --runs 2
  run "ours distribution" $L speed distribution --model "$MODEL" --texts "$OUT/texts.jsonl" --limit 5 --runs 2
  run "ours distribution, prompt with the title list" $L speed distribution --model "$MODEL" --texts "$OUT/texts-titles.jsonl" --limit 3 --runs 1
} > "$OUT/results.jsonl"

"$PYTHON" - "$OUT/results.jsonl" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
ours_f1, torch_f1, ours_f8, torch_f8, ours_s, torch_s, dist, dist_t = r
print("| measure | ours | PyTorch | ratio |")
print("|---|---|---|---|")
for name, o, t in [("forward tokens/s, b1x512", ours_f1, torch_f1), ("forward tokens/s, b8x256", ours_f8, torch_f8)]:
    print(f"| {name} | {o['tokens_per_s']:.0f} ({o['gflop_per_s']:.1f} GFLOP/s) | {t['tokens_per_s']:.0f} | {o['tokens_per_s']/t['tokens_per_s']:.2f}x |")
print(f"| transitions scored/s ({ours_s['targets']} targets; ours: one pass per resume, PyTorch: one prompt per target) | {ours_s['transitions_per_s']:.1f} | {torch_s['transitions_per_s']:.1f} | {ours_s['transitions_per_s']/torch_s['transitions_per_s']:.2f}x |")
for name, x in [("resume template", dist), ("prompt with the list of titles", dist_t)]:
    print(f"| full distribution over {x['titles']} titles / true title alone with its own prompt ({name}, {x['targets']} targets, {x['mean_prompt_tokens']:.0f} prompt tokens on average) | {x['full_distribution_s_per_target']:.2f} s / {x['true_title_alone_s_per_target']:.3f} s | | {x['cost_ratio']:.1f}x |")
PY
