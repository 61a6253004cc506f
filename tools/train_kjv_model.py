"""Train fastformer's embedded default model: a small Llama on the King James Bible.

corpus (tools/get_corpus.sh) -> byte-level BPE (fastformer.train_bpe) -> Llama trained with PyTorch on the
CPU -> Hugging Face directory -> Q8_0 GGUF written by fastformer itself (fastformer/data/kjv-5m-q8_0.gguf).
Every 50th chapter is held out and written to fastformer/data/heldout.txt for perplexity checks.
Torch and transformers are needed here only, never at run time.

    python tools/train_kjv_model.py --work /tmp/kjv-train
"""

import argparse
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "fastformer", "data")

SEED = 1611
HELDOUT_EVERY = 50  # chapter i (0-based) is held out when i % HELDOUT_EVERY == HELDOUT_EVERY - 1
VOCAB = 4096  # byte-level bpe ids (256 bytes + merges), no special tokens
DIM = 256  # hidden size
LAYERS = 6  # transformer blocks
HEADS = 8  # query heads (head size 32)
KV_HEADS = 2  # key/value heads (grouped-query attention)
FFN = 704  # swiglu inner size
CONTEXT = 512  # training window = max_position_embeddings
BATCH = 8  # windows per step
STEPS = 560  # optimizer steps (~2.3M tokens, ~2.3 epochs)
LR = 3e-3  # peak learning rate (linear warmup, cosine decay to LR_MIN)
LR_MIN = 3e-4
WARMUP = 40  # warmup steps
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
EVAL_EVERY = 140  # steps between held-out evaluations


def split_corpus(path):
    """(train chapters, held-out chapters) from the corpus file (chapters separated by blank lines)."""
    with open(path, encoding="utf-8") as f:
        chapters = [c.strip("\n") for c in f.read().split("\n\n") if c.strip()]
    held = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    train = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    return train, held


def lr_at(step, steps, lr, lr_min, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(steps - warmup, 1)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))


def eval_loss(model, ids, context, torch):
    """Mean next-token loss over non-overlapping windows of `ids` (fp32)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(ids) - 1, context):
            x = torch.tensor(ids[i : i + context + 1], dtype=torch.long)[None]
            if x.shape[1] < 2:
                break
            logits = model(input_ids=x[:, :-1]).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum")
            total += float(nll)
            count += x.shape[1] - 1
    model.train()
    return total / count


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/fastformer-kjv", help="scratch directory (corpus, hf model, log)")
    p.add_argument("--out", default=os.path.join(DATA, "kjv-5m-q8_0.gguf"), help="the shipped Q8_0 GGUF")
    p.add_argument("--heldout", default=os.path.join(DATA, "heldout.txt"))
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--context", type=int, default=CONTEXT)
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bfloat16 autocast for the forward pass (weights and optimizer stay fp32)",
    )
    args = p.parse_args(argv)

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import fastformer
    from fastformer.tokenizer import train_bpe

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)

    # 1. corpus: dump it once, hold out every 50th chapter
    corpus = os.path.join(args.work, "kjv.txt")
    if not os.path.exists(corpus):
        subprocess.run(["sh", os.path.join(ROOT, "tools", "get_corpus.sh"), corpus], check=True)
    train, held = split_corpus(corpus)
    train_text, held_text = "\n\n".join(train) + "\n", "\n\n".join(held) + "\n"
    os.makedirs(os.path.dirname(args.heldout), exist_ok=True)
    with open(args.heldout, "w", encoding="utf-8") as f:
        f.write(held_text)
    print(
        f"corpus: {len(train)} train chapters ({len(train_text)} chars), {len(held)} held out "
        f"({len(held_text)} chars) -> {args.heldout}",
        flush=True,
    )

    # 2. tokenizer on the training chapters only
    t0 = time.time()
    tok = train_bpe([train_text], vocab_size=VOCAB)
    train_ids = np.array(tok.encode_ordinary(train_text), dtype=np.int64)
    held_ids = tok.encode_ordinary(held_text)
    print(
        f"tokenizer: {tok.n_vocab} ids in {time.time() - t0:.0f} s; {len(train_ids)} train tokens, "
        f"{len(held_ids)} held-out tokens ({len(train_text.encode()) / len(train_ids):.2f} bytes/token)",
        flush=True,
    )

    # 3. model and training
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=DIM,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=args.context,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        initializer_range=0.02,
    )
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {n_params / 1e6:.2f}M parameters, dim {DIM}, {LAYERS} layers, {HEADS}/{KV_HEADS} heads, "
        f"ffn {FFN}, context {args.context}",
        flush=True,
    )
    groups = [
        {"params": [p for p in model.parameters() if p.ndim == 2], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))
    rng = np.random.default_rng(args.seed)
    T = args.context
    t_start = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, LR_MIN, WARMUP)
        starts = rng.integers(0, len(train_ids) - T - 1, args.batch)
        x = torch.from_numpy(np.stack([train_ids[s : s + T + 1] for s in starts]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            el = time.time() - t_start
            print(
                f"step {step:5d}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}  {el / 60:.1f} min",
                flush=True,
            )
        if (step + 1) % EVAL_EVERY == 0 and step + 1 < args.steps:
            print(f"step {step + 1:5d}  held-out loss {eval_loss(model, held_ids, T, torch):.4f}", flush=True)
    minutes = (time.time() - t_start) / 60
    held_loss = eval_loss(model, held_ids, T, torch)
    train_loss = eval_loss(model, train_ids[: len(held_ids)].tolist(), T, torch)
    print(f"trained {args.steps} steps x {args.batch * T} tokens in {minutes:.1f} min", flush=True)
    print(
        f"final: train loss {train_loss:.4f}, held-out loss {held_loss:.4f} "
        f"(perplexity {math.exp(held_loss):.2f}) in fp32 torch, windows of {T}",
        flush=True,
    )

    # 4. hugging face directory, then the shipped gguf written by fastformer
    hf_dir = os.path.join(args.work, "hf")
    model.save_pretrained(hf_dir, safe_serialization=True)
    tok.save(os.path.join(hf_dir, "tokenizer.json"))
    ff = fastformer.Model.load(hf_dir, quantize="q8_0")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    ff.save_gguf(args.out)
    back = fastformer.Model.load(args.out)
    sample = held_text[:2000]
    if back.tokenizer is None or back.tokenizer.encode(sample) != tok.encode(sample):
        sys.exit("the GGUF's tokenizer does not encode like the trained one")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.2f} MiB); tokenizer round-trips", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
