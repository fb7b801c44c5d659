#!/usr/bin/env bash
# Activation checkpointing on a GPU: the peak device memory and the time of LoRA and full
# fine-tuning of a SmolLM2-135M-shaped model (seeded random weights from `torch_gpu.py make`), a
# batch of 16 resumes, with and without `labor finetune --activation-checkpointing`, on
# BURN_DEVICE=cuda. The peak is the largest `memory.used` that nvidia-smi reports every 50 ms
# during the run: what the process holds in cubecl's memory pool.
#
#   LABOR=path/to/labor TOKENIZER=tokenizer.json RESULTS=dir benches/scripts/gpu_checkpointing.sh
#
# LABOR built with `--features labor-cli/cuda`; TOKENIZER: SmolLM2's tokenizer.json; PYTHON
# (default python3) needs torch and transformers. MODES (default "lora full") and BATCHES
# (default 16; each run trains two batches' worth of resumes, at least 96) pick the runs; a run
# that does not fit fails with cubecl's out-of-memory error, shown.
set -uo pipefail
L="$LABOR"
R="${RESULTS:-target/gpu-checkpointing}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$R"
"$PYTHON" benches/scripts/torch_gpu.py make --out "$R/model" --tokenizer "$TOKENIZER" >/dev/null
$L synth --workers 400 --seed 0 --out "$R/panel.parquet" >/dev/null
$L split --panel "$R/panel.parquet" --out-dir "$R/split" >/dev/null
for batch in ${BATCHES:-16}; do
for mode in ${MODES:-lora full}; do
  for ckpt in off on; do
    flags=()
    [ $mode = lora ] && flags+=(--lora-rank 16 --lora-targets q,k,v,o,gate,up,down)
    [ $ckpt = on ] && flags+=(--activation-checkpointing)
    docs=$((2 * batch > 96 ? 2 * batch : 96))
    run="$mode-$ckpt-b$batch"
    echo "== $mode, checkpointing $ckpt, batch $batch ($SECONDS s)"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 >"$R/mem-$run.txt" &
    smi=$!
    BURN_DEVICE=cuda timeout 240 $L finetune --base "$R/model" --train "$R/split/train.parquet" \
      --valid "$R/split/valid.parquet" --out "$R/ft-$run" --epochs 1 --batch-size $batch \
      --max-train-docs $docs --max-valid-docs 16 "${flags[@]}" 2>&1 | grep -v "^ *$" | tail -n 8
    kill $smi
    wait $smi 2>/dev/null
    peak=$(sort -n "$R/mem-$run.txt" | tail -n 1)
    echo "{\"mode\": \"$mode\", \"checkpointing\": \"$ckpt\", \"batch\": $batch, \"peak_mib\": ${peak:-null}}"
  done
done
done
echo "== done ($SECONDS s)"
