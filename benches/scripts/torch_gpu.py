"""The PyTorch side of benches/scripts/gpu_vs_torch.sh: Hugging Face transformers on a CUDA GPU.

  python torch_gpu.py make      --out DIR --tokenizer tokenizer.json [--seed 0]
  python torch_gpu.py logprobs  --model DIR --input prompts.jsonl --output out.jsonl
  python torch_gpu.py forward   --model DIR [--batch 1 --seq 512 --runs 20]
  python torch_gpu.py score     --model DIR --texts texts.jsonl [--limit 5]
  python torch_gpu.py train     --model DIR [--lora] [--batch 4 --seq 256 --runs 10]

`make` writes a SmolLM2-135M-shaped Llama with seeded random weights as a Hugging Face directory
(config.json, model.safetensors, the given tokenizer.json), so that the GPU machine needs no
download: speed does not depend on the weights' values, and both implementations read the same
file. `logprobs` writes, like `labor logprobs`, each token's log-probability given the ones before
it. The other modes time what torch_llm.py (the CPU reference) times, in float32, with the GPU
synchronised before each clock read. Each prints one JSON object.
"""
import argparse, json, os, shutil, statistics, time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def smollm2_135m():
    return LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, head_dim=64, hidden_act="silu",
        max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        # Wider than the usual 0.02 so that the next-token distributions are far from uniform
        # and a wrong kernel shows in the log-probabilities.
        initializer_range=0.08,
    )


# TORCH_DEVICE=cpu runs the same code on the CPU (to try the script without a GPU).
DEV = os.environ.get("TORCH_DEVICE", "cuda")


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def timed(fn, runs, warmup=2):
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts


def load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(DEV)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["make", "logprobs", "forward", "score", "train"])
    ap.add_argument("--model")
    ap.add_argument("--out")
    ap.add_argument("--tokenizer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input")
    ap.add_argument("--output")
    ap.add_argument("--texts")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--tf32", action="store_true",
                    help="float32 matrix products on the tensor cores in TF32 (10-bit mantissa)")
    a = ap.parse_args()
    # Plain float32 matrix products, as the CPU reference computes them, unless --tf32.
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(a.seed)
    name = torch.cuda.get_device_name(0) if DEV == "cuda" else "cpu"
    out = {"mode": a.mode, "torch": torch.__version__, "device": name, "tf32": a.tf32}
    if a.mode == "make":
        model = LlamaForCausalLM(smollm2_135m())
        model.save_pretrained(a.out, safe_serialization=True)
        shutil.copy(a.tokenizer, f"{a.out}/tokenizer.json")
        out.update(out_dir=a.out, parameters=sum(p.numel() for p in model.parameters()))
    elif a.mode == "logprobs":
        model = load(a.model).eval()
        tok = AutoTokenizer.from_pretrained(a.model)
        n = 0
        with open(a.output, "w") as f, torch.inference_mode():
            for line in open(a.input):
                ids = tok(json.loads(line)["text"], add_special_tokens=False)["input_ids"]
                x = torch.tensor([ids], device=DEV)
                lp = torch.log_softmax(model(input_ids=x, use_cache=False).logits[0].double(), -1)
                lps = [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]
                f.write(json.dumps({"tokens": ids, "logprobs": lps}) + "\n")
                n += 1
        out.update(texts=n)
    elif a.mode == "forward":
        model = load(a.model).eval()
        x = torch.randint(0, model.config.vocab_size, (a.batch, a.seq), device=DEV)
        def f():
            with torch.inference_mode():
                lp = torch.log_softmax(model(input_ids=x, use_cache=False).logits, -1)
                return lp[:, :-1].gather(-1, x[:, 1:, None]).sum().item()
        med, ts = timed(f, a.runs)
        out.update(batch=a.batch, seq=a.seq, median_s=med, tokens_per_s=a.batch * a.seq / med, all_s=ts)
    elif a.mode == "score":
        model = load(a.model).eval()
        tok = AutoTokenizer.from_pretrained(a.model)
        jobs = []
        for w in [json.loads(l) for l in open(a.texts)][: a.limit]:
            raw = w["text"].encode()
            for t in w["targets"]:
                jobs.append((raw[: t["prompt_end"]].decode(),
                             raw[t["continuation_start"]: t["continuation_end"]].decode()))
        def f():
            total = 0.0
            with torch.inference_mode():
                for prompt, cont in jobs:
                    p = tok(prompt, add_special_tokens=False)["input_ids"]
                    c = tok(cont, add_special_tokens=False)["input_ids"]
                    ids = torch.tensor([p + c], device=DEV)
                    lp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0], -1)
                    total += sum(lp[len(p) - 1 + i, c[i]].item() for i in range(len(c)))
            return total
        med, ts = timed(f, max(1, a.runs // 4), warmup=1)
        out.update(targets=len(jobs), median_s=med, transitions_per_s=len(jobs) / med, all_s=ts)
    else:
        model = load(a.model).train()
        params = list(model.parameters())
        if a.lora:
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                     target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
            params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)
        x = torch.randint(0, model.config.vocab_size, (a.batch, a.seq), device=DEV)
        def f():
            loss = model(input_ids=x, labels=x, use_cache=False).loss
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        if DEV == "cuda":
            torch.cuda.reset_peak_memory_stats()
        med, ts = timed(f, a.runs)
        out.update(lora=a.lora, batch=a.batch, seq=a.seq, median_s=med, tokens_per_s=a.batch * a.seq / med,
                   all_s=ts)
        if DEV == "cuda":
            out.update(peak_gpu_gib=torch.cuda.max_memory_allocated() / 2**30)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
