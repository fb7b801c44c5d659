#!/usr/bin/env bash
# Two builds of `labor` side by side (e.g. before and after a refactor), runs alternated:
# forward speed of SmolLM2-135M, CAREER training speed and LoRA fine-tuning speed, and whether
# both builds write byte-identical CAREER and LoRA outputs.
#   benches/scripts/compare_builds.sh OLD_LABOR NEW_LABOR [PASSES]
# The GGUF comes from scripts/fetch-smollm2. docs/architecture.md ("Build and CI") has a run.
set -euo pipefail
old=$1 new=$2 passes=${3:-3}
gguf=$(cd "$(dirname "$0")/../.." && ./scripts/fetch-smollm2 | tail -n 1)
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
"$new" synth --preset nlsy79 --workers 600 --seed 0 --out "$w/panel.parquet" >/dev/null 2>&1
"$new" split --panel "$w/panel.parquet" --seed 0 --out-dir "$w/split" >/dev/null 2>&1
for pass in $(seq "$passes"); do
  for v in old new; do
    bin=$old; [ "$v" = new ] && bin=$new
    fwd=$("$bin" speed forward --model "$gguf" --batch 1 --seq 512 --runs 6 2>/dev/null |
      python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_s"], 1))')
    "$bin" train --kind career --train "$w/split/train.parquet" --valid "$w/split/valid.parquet" \
      --epochs 2 --no-early-stopping --seed 1 --force --out "$w/career-$v" >/dev/null 2>"$w/career.err"
    career=$(grep -o '[0-9]* worker-years/s' "$w/career.err" | tail -1)
    lora=$("$bin" finetune --base "$gguf" --train "$w/split/train.parquet" \
      --valid "$w/split/valid.parquet" --lora-rank 8 --max-train-docs 24 --max-valid-docs 8 \
      --epochs 1 --batch-size 4 --seed 0 --force --out "$w/lora-$v" 2>&1 |
      grep -o '[0-9.]* tokens/s' | tail -1)
    echo "pass $pass $v: forward $fwd tokens/s | CAREER $career | LoRA $lora"
  done
done
cmp "$w/career-old/model.bpk" "$w/career-new/model.bpk" && echo "CAREER weights identical"
cmp "$w/career-old/loss.csv" "$w/career-new/loss.csv" && echo "CAREER loss.csv identical"
cmp "$w/lora-old/loss.csv" "$w/lora-new/loss.csv" && echo "LoRA loss.csv identical"
