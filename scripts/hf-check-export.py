#!/usr/bin/env python3
# Prints transformers' next-token log-probabilities of a fixed resume snippet for a Hugging Face
# directory written by `labor finetune` (best/): run with the anchors venv, then compare with
# LABOR_HF_DIR=DIR LABOR_HF_JSON=OUT cargo test -p labor-model --test integration exported_directory_matches_transformers -- --ignored
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
text = "<A Resume from the NLSY79 Dataset>\nThe following is the resume of a man born in 1960.\n1979 to 1980 (high school): Cooks\n1981: Secretaries\n"
ids = tok(text, add_special_tokens=False)["input_ids"]
with torch.inference_mode():
    lp = torch.log_softmax(m(input_ids=torch.tensor([ids])).logits[0], -1)
out = [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
print(json.dumps({"ids": ids, "log_probs": out}))
