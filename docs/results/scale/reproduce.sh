#!/usr/bin/env bash
# The measurements of docs/scale.md (activation checkpointing; sharded scoring), on the test and
# training splits of `labor quickstart --workers 400 --seed 0`. Needs SmolLM2 (scripts/fetch-smollm2)
# and GNU time. Writes its logs beside this script.
set -euo pipefail
cd "$(dirname "$0")"
LABOR=${LABOR:-labor}
G=${LABOR_SMOLLM2_GGUF:-$HOME/.cache/labor/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
W=$(mktemp -d)
$LABOR quickstart --out "$W/qs" --workers 400 --lm-train-docs 100 --lm-epochs 1 --resamples 200 > /dev/null
S=$W/qs/split
# Activation checkpointing: default kernels, burn's operations, burn's operations + checkpointing.
ft() { name=$1; shift
  /usr/bin/time -v "$LABOR" finetune --base "$G" --train $S/train.parquet --valid $S/valid.parquet \
    --epochs 1 --max-train-docs 8 --batch-size 4 --lora-rank 16 --lora-targets q,k,v,o,gate,up,down \
    --max-valid-docs 4 --loss-on titles --out "$W/ac-$name" --force "$@" > activation-checkpointing-$name.log 2>&1
  cp "$W/ac-$name/loss.csv" activation-checkpointing-$name-loss.csv; }
ft plain
ft ckpt --activation-checkpointing
LABOR_CPU_KERNELS=0 ft burnops
# Sharded scoring: one device against two CPU shards; the predictions files must be identical.
$LABOR render --panel $S/test.parquet --template resume --out "$W/test.jsonl"
for d in one two; do
  extra=(); [ $d = two ] && extra=(--devices flex,flex)
  /usr/bin/time -v "$LABOR" score --model "$G" --texts "$W/test.jsonl" --out "$W/$d.parquet" \
    --constrained "${extra[@]}" > sharded-scoring-$d.log 2>&1
done
cmp "$W/one.parquet" "$W/two.parquet" && echo "sharded scoring: identical predictions files" | tee sharded-scoring-cmp.log
