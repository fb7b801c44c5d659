#!/usr/bin/env bash
# Our GPU paths (burn's CUDA and wgpu backends) beside Hugging Face transformers on PyTorch on the
# same NVIDIA GPU, in one run, on a SmolLM2-135M-shaped model with seeded random weights that
# torch_gpu.py writes (no download needed; speed does not depend on the weights' values):
#   1. agreement: every token's log-probability of three rendered resumes, ours (cuda, wgpu,
#      CPU) vs transformers in float32 on the GPU, and transformers with TF32 matmuls vs itself;
#   2. forward tokens/s (b1x512, b8x512, b32x256), transitions scored/s, full-distribution cost;
#   3. fine-tuning tokens/s, full and LoRA r8, batch 4 x 256 (the CPU benchmark's shape), and a
#      short `labor finetune` run on cuda.
#
#   LABOR=path/to/labor FINETUNE_STEP=path/to/finetune_step TOKENIZER=tokenizer.json \
#     benches/scripts/gpu_vs_torch.sh
#
# LABOR and FINETUNE_STEP must be built with the GPU features:
#   cargo build --release -p labor-cli -p labor-model --bin labor --example finetune_step \
#     --features labor-cli/wgpu,labor-cli/cuda
# TOKENIZER: SmolLM2's tokenizer.json. PYTHON (default python3) needs torch, transformers and peft.
# CUDA needs the driver and NVRTC where it runs: e.g. CUDA_PATH=/usr/local/cuda-13.0 and
# LD_LIBRARY_PATH=$CUDA_PATH/lib64; wgpu needs a Vulkan loader and driver (docs/gpu.md).
# Results: $RESULTS (default target/gpu-vs-torch/; the JSON lines in $RESULTS_FILE, default
# $RESULTS/results.jsonl) and tables on stdout. DEADLINE: seconds after which no step starts.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
RESULTS="${RESULTS:-target/gpu-vs-torch}"
T="benches/scripts/torch_gpu.py"
mkdir -p "$RESULTS"
R="${RESULTS_FILE:-$RESULTS/results.jsonl}"
: > "$R"
L="$LABOR"

# DEADLINE (seconds since the start): steps that would begin later are skipped.
# ONLY (an extended regular expression): run only the steps whose names match it (and `make`,
# which writes the model every step reads).
DEADLINE="${DEADLINE:-100000}"
ONLY="(${ONLY:-.})|^make\$"
skip() { # name: whether to skip that step
  if [ "$SECONDS" -ge "$DEADLINE" ]; then echo "== $1: skipped (deadline)" >&2; return 0; fi
  [[ "$1" =~ $ONLY ]] && return 1
  echo "== $1: skipped (ONLY)" >&2; return 0
}
run() { # name, seconds, then the command; appends its last JSON line tagged with the name
  local name="$1" secs="$2"; shift 2
  skip "$name" && return
  echo "== $name" >&2
  local t0=$SECONDS line
  line="$(timeout "$secs" "$@" 2> "$RESULTS/$name.err" | grep '^{' | tail -n 1)"
  if [ -z "$line" ]; then
    echo "   FAILED after $((SECONDS - t0)) s; stderr:" >&2; tail -n 5 "$RESULTS/$name.err" >&2
    line='{"error": "failed"}'
  else
    echo "   $((SECONDS - t0)) s" >&2
  fi
  "$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[2]); d["name"]=sys.argv[1]; print(json.dumps(d))' "$name" "$line" >> "$R"
}

M="$RESULTS/model"
run make 300 "$PYTHON" "$T" make --out "$M" --tokenizer "$TOKENIZER"
$L synth --preset nlsy79 --workers 40 --seed 5 --out "$RESULTS/panel.parquet" >/dev/null
$L render --template resume --panel "$RESULTS/panel.parquet" --out "$RESULTS/texts.jsonl" >/dev/null
head -n 3 "$RESULTS/texts.jsonl" | "$PYTHON" -c '
import json, sys
for l in sys.stdin: print(json.dumps({"text": json.loads(l)["text"]}))' > "$RESULTS/prompts.jsonl"

logprobs() { # backend: every token's log-probability of the prompts, on that backend
  skip "logprobs-$1" && return
  echo "== logprobs-$1" >&2
  BURN_DEVICE=$1 timeout 300 $L logprobs --model "$M" --input "$RESULTS/prompts.jsonl" \
    --output "$RESULTS/lp-$1.jsonl" 2> "$RESULTS/logprobs-$1.err" || tail -n 5 "$RESULTS/logprobs-$1.err" >&2
}
forward() { # batch, seq: ours on cuda and wgpu, then PyTorch
  run "ours-cuda-forward-b$1x$2" 240 $L speed forward --backend cuda --model "$M" --batch $1 --seq $2 --runs 5
  run "ours-wgpu-forward-b$1x$2" 240 $L speed forward --backend wgpu --model "$M" --batch $1 --seq $2 --runs 5
  run "torch-forward-b$1x$2" 240 "$PYTHON" "$T" forward --model "$M" --batch $1 --seq $2 --runs 10
}
train() { # 0 (full) or 1 (LoRA r8): ours on cuda and wgpu, then PyTorch
  local flag=""; [ "$1" = 1 ] && flag="--lora"
  BURN_DEVICE=cuda run "ours-cuda-train-lora$1" 300 "$FINETUNE_STEP" "$M" "$TOKENIZER" --steps 6 $flag
  BURN_DEVICE=wgpu run "ours-wgpu-train-lora$1" 300 "$FINETUNE_STEP" "$M" "$TOKENIZER" --steps 6 $flag
  run "torch-train-lora$1" 300 "$PYTHON" "$T" train --model "$M" --batch 4 --seq 256 --runs 10 $flag
}

# Most important first, so that a run cut short still answers the main questions: does CUDA
# compute the same numbers, and how fast does it train and score.
run torch-logprobs 300 "$PYTHON" "$T" logprobs --model "$M" --input "$RESULTS/prompts.jsonl" --output "$RESULTS/lp-torch.jsonl"
logprobs cuda
train 0
forward 8 512
logprobs wgpu
train 1
forward 1 512
forward 32 256
run ours-cuda-score 240 $L speed score --backend cuda --model "$M" --texts "$RESULTS/texts.jsonl" --limit 5 --runs 3
run torch-score 240 "$PYTHON" "$T" score --model "$M" --texts "$RESULTS/texts.jsonl" --limit 5 --runs 8
run ours-cuda-distribution 300 $L speed distribution --backend cuda --model "$M" --texts "$RESULTS/texts.jsonl" --limit 5 --runs 1
logprobs flex
# PyTorch with TF32 matrix products against itself in float32: burn's CUDA matmuls run f32 inputs
# on the tensor cores in TF32 (cubek-matmul, compute capability 8.0 and up), so this is the size
# of difference to expect from that alone.
run torch-logprobs-tf32 300 "$PYTHON" "$T" logprobs --tf32 --model "$M" --input "$RESULTS/prompts.jsonl" --output "$RESULTS/lp-torch-tf32.jsonl"
# The whole `labor finetune` command on the GPU: a short full fine-tuning run on a synthetic
# split, with validation before and after and the export of the best checkpoint.
if ! skip finetune-cli; then
  $L split --panel "$RESULTS/panel.parquet" --out-dir "$RESULTS/split" >/dev/null
  echo "== finetune-cli" >&2
  BURN_DEVICE=cuda timeout 300 $L finetune --base "$M" --train "$RESULTS/split/train.parquet" \
    --valid "$RESULTS/split/valid.parquet" --max-train-docs 24 --batch-size 4 --max-tokens 256 \
    --lr 3e-4 --max-valid-docs 8 --out "$RESULTS/ft" > "$RESULTS/finetune-cli.out" 2> "$RESULTS/finetune-cli.err"
  tail -n 3 "$RESULTS/finetune-cli.out" "$RESULTS/finetune-cli.err" >&2
fi

"$PYTHON" - "$RESULTS" "$R" <<'PY'
import json, sys
d = sys.argv[1]
r = {x["name"]: x for x in map(json.loads, open(sys.argv[2]))}
def lp(name):
    try:
        return [json.loads(l) for l in open(f"{d}/lp-{name}.jsonl")]
    except OSError:
        return None
ref = lp("torch")
print(f"device: {r.get('make', {}).get('device')}, torch {r.get('make', {}).get('torch')}")
print("| ours vs transformers (float32, GPU) | tokens equal | max abs diff of log-probabilities | spread (std) of the reference |")
print("|---|---|---|---|")
for name in ["cuda", "wgpu", "flex", "torch-tf32"]:
    ours = lp(name)
    if ref is None or ours is None or len(ours) != len(ref):
        print(f"| {name} | failed | | |"); continue
    same = all(o["tokens"] == t["tokens"] for o, t in zip(ours, ref))
    diffs = [abs(a - b) for o, t in zip(ours, ref) for a, b in zip(o["logprobs"][1:], t["logprobs"][1:])]
    vals = [b for t in ref for b in t["logprobs"][1:]]
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
    print(f"| {name} ({len(diffs)} tokens) | {same} | {max(diffs):.2e} | {std:.2f} |")
def tps(n, k="tokens_per_s"):
    x = r.get(n, {})
    return x.get(k)
print()
print("| measure | ours cuda | ours wgpu | PyTorch | cuda / PyTorch |")
print("|---|---|---|---|---|")
def row(label, c, w, t):
    f = lambda v: "–" if v is None else f"{v:,.0f}"
    ratio = f"{c / t:.2f}x" if c and t else ""
    print(f"| {label} | {f(c)} | {f(w)} | {f(t)} | {ratio} |")
for s in ["b1x512", "b8x512", "b32x256"]:
    row(f"forward tokens/s, {s}", tps(f"ours-cuda-forward-{s}"), tps(f"ours-wgpu-forward-{s}"), tps(f"torch-forward-{s}"))
row("transitions scored/s (ours: one pass per resume; PyTorch: one prompt per target)",
    tps("ours-cuda-score", "transitions_per_s"), None, tps("torch-score", "transitions_per_s"))
for lora in [0, 1]:
    row(f"fine-tuning tokens/s, {'LoRA r8' if lora else 'full'}, 4x256", tps(f"ours-cuda-train-lora{lora}"),
        tps(f"ours-wgpu-train-lora{lora}"), tps(f"torch-train-lora{lora}"))
x = r.get("ours-cuda-distribution", {})
if "cost_ratio" in x:
    print(f"\nfull distribution over {x['titles']} titles: {x['full_distribution_s_per_target']:.3f} s per target, "
          f"{x['cost_ratio']:.1f}x the true title alone ({x['mean_prompt_tokens']:.0f} prompt tokens on average)")
PY
