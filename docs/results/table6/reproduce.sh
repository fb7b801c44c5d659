#!/usr/bin/env bash
# Reproduces docs/results/table6: the quickstart's panel (4,000 synthetic NLSY79-like workers,
# seed 0, split seed 0: 2,822 train / 371 valid / 807 test), a nested sample of $WORKERS
# (default 1,000) of the training workers (labor sample, seed 0), SmolLM2-135M fine-tuned on
# their resumes (LoRA rank 16 on every projection), the baselines trained on the same workers,
# and every model scored on the 807 test workers. Resumable: a step whose output exists is skipped, and the
# fine-tuning continues from its last checkpoint. Models and panels go to $WORK
# (default target/table6), predictions and logs (wall time, peak memory) to docs/results/table6.
#
#   docs/results/table6/reproduce.sh [STEP ...]     # steps: data llm baselines score eval (default: all)
set -euo pipefail
cd "$(dirname "$0")/../../.."
LABOR="${LABOR:-${CARGO_TARGET_DIR:-$HOME/.cache/labor-target}/release/labor}"
W="${WORK:-target/table6}"
# Training workers: a nested sample of the 2,822 (labor sample); every model trains on it.
N="${WORKERS:-1000}"
# Predictions and logs: docs/results/table6 for the table's size, a subfolder for other sizes.
MAIN=docs/results/table6
R="${RESULTS:-$MAIN}"
mkdir -p "$W" "$R/logs"
steps=("${@:-data llm baselines score eval}")
steps=" ${steps[*]} "
has() { [[ "$steps" == *" $1 "* ]]; }
# Runs a command, appending its output, wall time and peak memory to $R/logs/NAME.log.
run() {
  local name=$1; shift
  echo "== $name: $*" | tee -a "$R/logs/$name.log"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$@" 2>&1 | tee -a "$R/logs/$name.log"
}

if has data; then
  [ -f "$W/panel.parquet" ] || run data "$LABOR" synth --preset nlsy79 --workers 4000 --seed 0 --out "$W/panel.parquet" --truth "$MAIN/truth.parquet"
  [ -f "$W/split/test.parquet" ] || run data "$LABOR" split --panel "$W/panel.parquet" --seed 0 --out-dir "$W/split"
  [ -f "$W/train-$N.parquet" ] || run data "$LABOR" sample --panel "$W/split/train.parquet" --workers "$N" --seed 0 --out "$W/train-$N.parquet"
fi

if has llm; then
  gguf="$(./scripts/fetch-smollm2 | tail -n 1)"
  # One run per epoch, at the peak learning rates of $LLM_LRS (default three epochs at 1e-3; the
  # table's fourth epoch ran with LLM_LRS="1e-3 1e-3 1e-3 3e-4"): epoch 1 from the GGUF, epoch e
  # from epoch e-1's best model (adapters merged) with fresh rank-16 adapters, a fresh warmup
  # and decay and another shuffle (seed e-1). .done is written when a run has finished; until
  # then a rerun resumes it from its checkpoint.
  read -r -a lrs <<<"${LLM_LRS:-1e-3 1e-3 1e-3}"
  base="$gguf"
  for ((e = 1; e <= ${#lrs[@]}; e++)); do
    out="$W/models/llm-finetuned-$N"
    [ "$e" = 1 ] || out="$out-epoch$e"
    if [ ! -f "$out/.done" ]; then
      resume=()
      [ -d "$out/checkpoint" ] && resume=(--resume)
      log=llm-finetune
      [ "$e" = 1 ] || log="llm-finetune-epoch$e"
      run "$log" "$LABOR" finetune --base "$base" \
        --train "$W/train-$N.parquet" --valid "$W/split/valid.parquet" \
        --epochs 1 --batch-size 4 --lora-rank 16 --lora-targets q,k,v,o,gate,up,down --lr "${lrs[e - 1]}" \
        --loss-on titles --max-valid-docs 40 --eval-every 50 --checkpoint-every 25 \
        --seed $((e - 1)) --out "$out" "${resume[@]}"
      touch "$out/.done"
    fi
    base="$out/best"
  done
  echo "$base" >"$W/llm-finetuned-$N.best"
fi

if has baselines; then
  # The kinds' default options (the table's rows), all on the same $N training workers.
  kinds=" ${KINDS:-empirical logit career career-paper} "
  for m in empirical:--kind=empirical logit:--kind=logit career:--kind=career career-paper:--kind=career:--size=paper; do
    name=${m%%:*}
    [[ "$kinds" == *" $name "* ]] || continue
    IFS=: read -r -a flags <<<"${m#*:}"
    [ -f "$W/models/$name-$N/model.json" ] || run "train-$name" "$LABOR" train "${flags[@]}" \
      --train "$W/train-$N.parquet" --valid "$W/split/valid.parquet" --out "$W/models/$name-$N"
    [ -f "$R/$name.parquet" ] || run "predict-$name" "$LABOR" predict --model "$W/models/$name-$N" \
      --panel "$W/split/test.parquet" --name "$name" --out "$R/$name.parquet"
  done
fi

if has score; then
  [ -f "$W/test-resume.jsonl" ] || run score "$LABOR" render --panel "$W/split/test.parquet" --template resume --out "$W/test-resume.jsonl"
  [ -f "$R/llm-finetuned.parquet" ] || run score "$LABOR" score --model "$(cat "$W/llm-finetuned-$N.best")" \
    --texts "$W/test-resume.jsonl" --name llm-finetuned --out "$R/llm-finetuned.parquet"
  # The same model with decoding constrained to the titles (it also prints the free perplexity
  # and where the free model's mass leaves the titles).
  [ -f "$R/llm-constrained.parquet" ] || run score-constrained "$LABOR" score --model "$(cat "$W/llm-finetuned-$N.best")" \
    --texts "$W/test-resume.jsonl" --constrained --name llm-constrained --out "$R/llm-constrained.parquet"
fi

if has eval; then
  preds=("$R"/*.parquet)
  [ "$R" = "$MAIN" ] || preds+=("$MAIN/truth.parquet")
  run eval "$LABOR" eval --predictions "${preds[@]}" --panel "$W/split/test.parquet" --out "$W/eval-$N"
  cp "$W/eval-$N/report.md" "$W/eval-$N/metrics.json" "$R/"
  # The same split into moves (the state changed), stays (it repeated the previous one) and all
  # but the first records.
  for t in changes stays exclude-first; do
    run eval "$LABOR" eval --predictions "${preds[@]}" --panel "$W/split/test.parquet" --targets "$t" --out "$W/eval-$N-$t"
    cp "$W/eval-$N-$t/report.md" "$R/report-$t.md"
    cp "$W/eval-$N-$t/metrics.json" "$R/metrics-$t.json"
  done
fi
