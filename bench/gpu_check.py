"""GPU check at real model sizes (<= 8 minutes per size on one H100/H200): prints ratios, writes JSON.

    bash bench/gpu_check.sh --size 0.5b        # or 1.5b; --size tiny runs the same code on CPU in seconds

Throughput does not depend on the weights, so the script builds a randomly initialised model of a
real architecture and size (Qwen2.5-0.5B / 1.5B shapes, bf16, tied embeddings, vocab 151936) and a
word-level tokenizer with the same vocabulary size (every id decodes; prompts and completions are
sequences of its words). Nothing is downloaded. Checks, each comparing potstill's path with the raw
baseline on the same inputs, interleaved, best of `--repeats`:

1. generation: potstill's hf backend (`HFBackend.generate`: rendering, sorting, seeded sampler,
   log-probs, offsets) vs bare `model.generate` on the same prompts, batch and length (ratio, goal
   >= 0.9), and both vs the decode roofline: memory bandwidth / bytes read per decoded token
   (all weights once per step, shared by the batch, plus each sequence's KV cache at its mean
   length). Bandwidth comes from the device name (spec sheet) or, when unknown, a measured copy;
   the measured copy is always reported too.
2. teacher-forced scoring: `TeacherForcedScorer.score` (tokenising off the critical path, pinned
   host buffers, length-sorted batches, chunked output head) vs a bare batched forward over the
   same batches with inputs already on the device (ratio, goal >= 0.85).
3. SFT: potstill's `train_sft` (TRL) steps/s vs a plain loop (fp32 weights, bf16 autocast, AdamW)
   with the same batches, length and activation-checkpointing setting (ratio, goal >= 0.9); also
   TRL with its default checkpointing, for the record.

Runs under a GPU machine's python with torch, transformers, tokenizers, trl, datasets, polars and
pyarrow; no warehouse, no Prefect. Writes bench/results/gpu_check[-SIZE].json (`--out` to change).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOALS = {"generation": 0.9, "scoring": 0.85, "sft": 0.9}


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    max_positions: int = 32768


SHAPES = {
    # Qwen2.5-0.5B / 1.5B (config.json of the released models); tiny: the same code path on CPU
    "0.5b": Shape(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, vocab=151936),
    "1.5b": Shape(hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960, vocab=151936),
    "tiny": Shape(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=2048, max_positions=2048),
}

# HBM bandwidth (bytes/s) from spec sheets, matched on the device name (longest key first)
BANDWIDTH = {
    "H200": 4.8e12,
    "H100 NVL": 3.9e12,
    "H100 PCIe": 2.0e12,
    "H100": 3.35e12,  # SXM
    "H20": 4.0e12,
    "GH200": 4.0e12,
    "B200": 8.0e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100 80GB PCIe": 1.935e12,
    "A100": 1.555e12,  # 40GB
    "L40S": 0.864e12,
    "L40": 0.864e12,
    "A10G": 0.6e12,
    "A10": 0.6e12,
    "L4": 0.3e12,
    "RTX 4090": 1.008e12,
    "RTX 3090": 0.936e12,
}

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<think>", "</think>"]


def log(msg: str) -> None:
    print(msg, flush=True)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- model and data ---------------------------------------------------------------------------------
def build_tokenizer(vocab: int):
    """Word-level tokenizer with exactly `vocab` ids (specials + words w<i>), a chat template and offsets."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {t: i for i, t in enumerate(SPECIALS)}
    words.update({f"w{i}": len(SPECIALS) + i for i in range(vocab - len(SPECIALS))})
    tk = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    return tok


def build_model(shape: Shape, device: str, dtype, seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM of `shape`, built directly on `device` in `dtype`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                      num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                      intermediate_size=shape.intermediate, max_position_embeddings=shape.max_positions,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0, dtype=str(dtype).split(".")[-1])
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg).to(dtype)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    return model.eval()


def words(rng: random.Random, n: int, vocab: int) -> str:
    return " ".join(f"w{rng.randrange(vocab - len(SPECIALS))}" for _ in range(n))


def prompts(n: int, vocab: int, lo: int, hi: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [words(rng, rng.randint(lo, hi), vocab) for _ in range(n)]


def completions(n: int, vocab: int, lo: int, hi: int, seed: int = 2) -> list[str]:
    """Reasoning-like completions: a think block of lo..hi words and a short answer."""
    rng = random.Random(seed)
    return [f"<think> {words(rng, rng.randint(lo, hi), vocab)} </think> {words(rng, 4, vocab)}" for _ in range(n)]


# -- roofline -----------------------------------------------------------------------------------------
def measured_bandwidth(device: str, mib: int = 1024) -> float | None:
    """Bytes/s of a large device-to-device copy (read + write counted), best of 5; None on CPU."""
    import torch

    if not device.startswith("cuda"):
        return None
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(6):
        sync()
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t0)
    del src, dst
    return 2 * mib * 2**20 / best


def spec_bandwidth(name: str | None) -> float | None:
    if not name:
        return None
    for key in sorted(BANDWIDTH, key=len, reverse=True):
        if key.lower() in name.lower():
            return BANDWIDTH[key]
    return None


def decode_roofline(model, shape: Shape, batch: int, mean_context: float, bandwidth: float) -> dict:
    """Tokens/s upper bound of batched decoding: each step reads every weight once (shared by the
    batch) and every sequence's KV cache (2 x layers x kv_heads x head_dim x bytes per position)."""
    bytes_per = next(model.parameters()).element_size()
    weight_bytes = sum(p.numel() for p in model.parameters()) * bytes_per  # tied head counted once
    head_dim = shape.hidden // shape.heads
    kv_per_position = 2 * shape.layers * shape.kv_heads * head_dim * bytes_per
    step_bytes = weight_bytes + batch * mean_context * kv_per_position
    return {"weight_bytes": weight_bytes, "kv_bytes_per_position": kv_per_position, "batch": batch,
            "mean_context_tokens": mean_context, "bytes_per_token": step_bytes / batch,
            "roofline_tokens_per_s": bandwidth * batch / step_bytes,
            # one sequence alone (no batching): every weight read per token
            "batch1_roofline_tokens_per_s": bandwidth / (weight_bytes + mean_context * kv_per_position)}


# -- 1. generation ----------------------------------------------------------------------------------
def bare_generate(model, tok, texts, *, batch_size, max_new_tokens, temperature) -> int:
    """Plain `model.generate`, left-padded batches in the given order; returns tokens generated (to EOS)."""
    import torch

    n = 0
    eos = tok.eos_token_id
    for i in range(0, len(texts), batch_size):
        chunk = [tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
                 for t in texts[i : i + batch_size]]
        enc = tok(chunk, add_special_tokens=False, padding=True, return_tensors="pt", padding_side="left").to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                                 top_p=1.0, pad_token_id=tok.pad_token_id, eos_token_id=eos)
        gen = out[:, enc["input_ids"].shape[1] :]
        ended = (gen == eos).int()
        first = torch.where(ended.any(1), ended.argmax(1), torch.full_like(ended[:, 0], gen.shape[1]))
        n += int(first.sum())
    return n


def check_generation(model, tok, shape: Shape, args, report: dict, bandwidth: dict) -> None:
    from tasks.generate.config import EngineConfig, SamplingConfig
    from tasks.generate.hf_backend import HFBackend
    from tasks.generate.requests import build_requests

    texts = prompts(args.prompts, shape.vocab, args.prompt_words // 2, args.prompt_words)
    backend = HFBackend(EngineConfig(model="gpu-check", name=f"qwen2-{args.size}-random", revision="random",
                                     batch_size=args.batch_size, device=args.device), model=model, tokenizer=tok)
    sampling = SamplingConfig(n=1, temperatures=(args.temperature,), max_tokens=args.max_new_tokens)
    reqs = build_requests([(f"p{i}", t) for i, t in enumerate(texts)], model_id=backend.engine.name,
                          template_hash="gpu-check", sampling=sampling)
    backend.generate(reqs[: args.batch_size], True)  # warm-up (kernels, allocator)
    bare_generate(model, tok, texts[: args.batch_size], batch_size=args.batch_size, max_new_tokens=8, temperature=args.temperature)
    best_hf = best_bare = 0.0
    n_hf = 0
    for _ in range(args.repeats):
        sync(); t0 = time.perf_counter()
        results = backend.generate(reqs, True)
        sync(); dt = time.perf_counter() - t0
        n_hf = sum(r.n_completion_tokens for r in results)
        best_hf = max(best_hf, n_hf / dt)
        sync(); t0 = time.perf_counter()
        n_bare = bare_generate(model, tok, texts, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature)
        sync(); dt = time.perf_counter() - t0
        best_bare = max(best_bare, n_bare / dt)
    prompt_tokens = sum(len(tok(t)["input_ids"]) for t in texts) / len(texts) + 4
    entry = {"prompts": len(texts), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
             "mean_prompt_tokens": prompt_tokens, "mean_completion_tokens": n_hf / len(reqs),
             "hf_backend_tokens_per_s": best_hf, "bare_generate_tokens_per_s": best_bare,
             "ratio": best_hf / best_bare, "goal": GOALS["generation"]}
    bw = bandwidth.get("used_bytes_per_s")
    if bw:
        roof = decode_roofline(model, shape, min(args.batch_size, len(texts)), prompt_tokens + args.max_new_tokens / 2, bw)
        entry["roofline"] = roof
        entry["hf_backend_roofline_fraction"] = best_hf / roof["roofline_tokens_per_s"]
        entry["bare_generate_roofline_fraction"] = best_bare / roof["roofline_tokens_per_s"]
    report["generation"] = entry
    line = (f"[generate] hf backend {best_hf:,.0f} tok/s vs bare generate {best_bare:,.0f} tok/s -> ratio "
            f"{entry['ratio']:.2f} (goal >= {GOALS['generation']})")
    if bw:
        line += (f"; decode roofline {entry['roofline']['roofline_tokens_per_s']:,.0f} tok/s "
                 f"({entry['roofline']['bytes_per_token'] / 2**20:.1f} MiB/token at {bw / 1e12:.2f} TB/s): "
                 f"hf backend reaches {entry['hf_backend_roofline_fraction']:.1%}, bare generate "
                 f"{entry['bare_generate_roofline_fraction']:.1%}")
    log(line)


# -- 2. teacher-forced scoring ------------------------------------------------------------------------
def check_scoring(model, tok, shape: Shape, args, report: dict) -> None:
    import torch

    from bench.bench_scoring import padded_inputs
    from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer

    cfg = ScoringConfig(device=args.device, max_batch_size=args.score_batch, max_batch_tokens=args.score_batch_tokens)
    scorer = TeacherForcedScorer(model, cfg, tokenizer=tok, model_id=f"qwen2-{args.size}-random")
    texts = prompts(args.score_traces, shape.vocab, args.prompt_words // 2, args.prompt_words, seed=3)
    comps = completions(args.score_traces, shape.vocab, args.completion_words // 4, args.completion_words)
    items = [ScoringItem(f"t{i}", p, c) for i, (p, c) in enumerate(zip(texts, comps))]
    batches = scorer.batches([e for e in scorer.encode_many(items) if e.completion_ids])
    prepared = padded_inputs(scorer, batches)
    n_tokens = sum(len(e.completion_ids) for b in batches for e in b)

    def bare() -> float:
        sync(); t0 = time.perf_counter()
        with torch.inference_mode():
            for ids, mask in prepared:
                _ = model(input_ids=ids, attention_mask=mask).logits
        sync()
        return time.perf_counter() - t0

    def ours() -> float:
        sync(); t0 = time.perf_counter()
        table = scorer.score(items)
        sync()
        if table.num_rows != len(items):
            raise RuntimeError(f"scorer returned {table.num_rows} rows for {len(items)} items")
        return time.perf_counter() - t0

    scorer.score(items[: args.score_batch])  # warm-up
    bare()
    t_bare = t_ours = float("inf")
    for _ in range(args.repeats):
        t_ours = min(t_ours, ours())
        t_bare = min(t_bare, bare())
    report["scoring"] = {"traces": len(items), "batches": len(batches), "completion_tokens": n_tokens,
                         "split_head": scorer._split_head, "scorer_tokens_per_s": n_tokens / t_ours,
                         "bare_forward_tokens_per_s": n_tokens / t_bare, "ratio": t_bare / t_ours, "goal": GOALS["scoring"]}
    log(f"[scoring] teacher-forced scorer {n_tokens / t_ours:,.0f} tok/s vs bare batched forward {n_tokens / t_bare:,.0f} "
        f"tok/s over {len(batches)} batches -> ratio {t_bare / t_ours:.2f} (goal >= {GOALS['scoring']})")


# -- 3. SFT -------------------------------------------------------------------------------------------
def sft_rows(n: int, vocab: int, args):
    import polars as pl

    rng = random.Random(4)
    return pl.DataFrame({
        "prompt": [words(rng, rng.randint(args.prompt_words // 2, args.prompt_words), vocab) for _ in range(n)],
        "reasoning": [words(rng, rng.randint(args.completion_words // 2, args.completion_words), vocab) for _ in range(n)],
        "answer": [words(rng, 4, vocab) for _ in range(n)],
    })


def plain_sft_steps_per_s(model_dir: str, rows, args, device: str, checkpointing: bool) -> float:
    """The plain loop: fp32 weights, bf16 autocast on CUDA, AdamW, grad clipping, right-padded batches
    with completion-only labels; examples tokenised up front (as TRL does before training)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tasks.common.text import join_think

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    examples = []
    for p, r, a in zip(rows["prompt"], rows["reasoning"], rows["answer"]):
        head = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        pi = tok(head, add_special_tokens=False)["input_ids"]
        ci = tok(join_think(r, a), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = (pi + ci)[: args.sft_max_length]
        examples.append((ids, ([-100] * len(pi) + ci)[: args.sft_max_length]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.startswith("cuda"))
    bs = args.sft_batch

    def batch(k: int):
        chunk = [examples[(k * bs + j) % len(examples)] for j in range(bs)]
        width = max(len(x) for x, _ in chunk)
        ids = torch.full((bs, width), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((bs, width), -100, dtype=torch.long)
        mask = torch.zeros((bs, width), dtype=torch.long)
        for i, (x, y) in enumerate(chunk):
            ids[i, : len(x)] = torch.tensor(x)
            labels[i, : len(y)] = torch.tensor(y)
            mask[i, : len(x)] = 1
        return {k2: v.to(device, non_blocking=True) for k2, v in
                {"input_ids": ids, "attention_mask": mask, "labels": labels}.items()}

    def step(k: int) -> None:
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            loss = model(**batch(k)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for k in range(2):
        step(k)
    sync(); t0 = time.perf_counter()
    for k in range(args.sft_steps):
        step(k)
    sync()
    return args.sft_steps / (time.perf_counter() - t0)


def potstill_sft(model_dir: str, rows, args, device: str, checkpointing: bool | None) -> dict:
    from tasks.train.config import TrainConfig
    from tasks.train.sft import train_sft

    cfg = TrainConfig(learning_rate=1e-5, max_steps=args.sft_steps, per_device_batch_size=args.sft_batch,
                      max_length=args.sft_max_length, logging_steps=max(1, args.sft_steps // 4),
                      activation_checkpointing=checkpointing, device="cuda" if device.startswith("cuda") else "cpu")
    with tempfile.TemporaryDirectory(prefix="gpu-check-sft-") as out:
        result = train_sft(rows, model_dir, cfg, out)
    return {"steps_per_s": result.n_steps / result.train_seconds, "train_seconds": result.train_seconds,
            "steps": result.n_steps, "precision": result.precision, "activation_checkpointing": checkpointing}


def check_sft(model_dir: str, shape: Shape, args, report: dict) -> None:
    import torch

    device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    rows = sft_rows(max(args.sft_batch * 4, 64), shape.vocab, args)
    base = plain_sft_steps_per_s(model_dir, rows, args, device, checkpointing=False)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()  # the plain loop's model and optimizer state are gone
    ours = potstill_sft(model_dir, rows, args, device, checkpointing=False)
    entry = {"batch_size": args.sft_batch, "max_length": args.sft_max_length, "steps": args.sft_steps,
             "plain_loop_steps_per_s": base, "potstill_sft": ours, "ratio": ours["steps_per_s"] / base, "goal": GOALS["sft"]}
    if device.startswith("cuda") and not args.skip_checkpointing:
        ckpt = potstill_sft(model_dir, rows, args, device, checkpointing=None)  # TRL's default on CUDA: on
        entry["potstill_sft_default_checkpointing"] = ckpt
        entry["default_checkpointing_vs_plain"] = ckpt["steps_per_s"] / base
    report["sft"] = entry
    log(f"[sft] potstill SFT (TRL) {ours['steps_per_s']:.2f} steps/s vs plain loop {base:.2f} steps/s -> ratio "
        f"{entry['ratio']:.2f} (goal >= {GOALS['sft']}; batch {args.sft_batch}, up to {args.sft_max_length} tokens)")


# -- main ---------------------------------------------------------------------------------------------
def defaults_for(size: str) -> dict:
    if size == "tiny":
        return {"prompts": 16, "batch_size": 8, "max_new_tokens": 16, "score_traces": 16, "score_batch": 8,
                "score_batch_tokens": 4096, "sft_steps": 3, "sft_batch": 4, "sft_max_length": 128,
                "prompt_words": 24, "completion_words": 64, "repeats": 1}
    big = size == "1.5b"
    return {"prompts": 256, "batch_size": 128, "max_new_tokens": 256, "score_traces": 512, "score_batch": 64,
            "score_batch_tokens": 65536, "sft_steps": 24 if big else 40, "sft_batch": 8, "sft_max_length": 1024,
            "prompt_words": 96, "completion_words": 768, "repeats": 2}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SHAPES), default="0.5b")
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cuda, cpu")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--checks", default="generation,scoring,sft", help="comma-separated subset to run")
    ap.add_argument("--skip-checkpointing", action="store_true", help="skip the extra SFT run with TRL's default checkpointing")
    ap.add_argument("--out", default=None, help="JSON report (default bench/results/gpu_check-SIZE.json)")
    for key, value in defaults_for("0.5b").items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None, help=f"default per size (0.5b: {value})")
    args = ap.parse_args(argv)
    for key, value in defaults_for(args.size).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = Path(args.out or REPO / "bench" / "results" / f"gpu_check-{args.size}.json")

    import torch
    import transformers

    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    args.device = device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    gpu = torch.cuda.get_device_name(0) if cuda else None
    shape = SHAPES[args.size]
    report: dict = {"host": platform.node(), "torch": torch.__version__, "transformers": transformers.__version__,
                    "gpu": gpu, "device": device, "size": args.size, "shape": asdict(shape), "dtype": str(dtype),
                    "args": vars(args), "goals": GOALS, "errors": {}}
    log(f"gpu_check --size {args.size}: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"device {gpu or device}, {dtype}")
    started = time.perf_counter()
    spec = spec_bandwidth(gpu)
    copy = measured_bandwidth(device)
    bandwidth = {"spec_bytes_per_s": spec, "measured_copy_bytes_per_s": copy,
                 "used_bytes_per_s": spec or copy, "source": "spec sheet" if spec else ("measured copy" if copy else None)}
    report["bandwidth"] = bandwidth
    if spec or copy:
        log(f"[bandwidth] spec {spec / 1e12 if spec else float('nan'):.2f} TB/s, measured copy "
            f"{copy / 1e12 if copy else float('nan'):.2f} TB/s; roofline uses {bandwidth['source']}")
    tok = build_tokenizer(shape.vocab)
    t0 = time.perf_counter()
    model = build_model(shape, device, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    report["model"] = {"parameters": n_params, "build_s": time.perf_counter() - t0}
    log(f"[model] random Qwen2 {args.size}: {n_params / 1e6:,.1f}M parameters on {device} in {time.perf_counter() - t0:.1f} s")
    wanted = {c.strip() for c in args.checks.split(",") if c.strip()}
    unknown = wanted - {"generation", "scoring", "sft"}
    if unknown:
        raise SystemExit(f"--checks: unknown {sorted(unknown)}; choose from generation, scoring, sft")

    def run(name: str, fn) -> None:
        if name not in wanted:
            return
        t = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others' numbers
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"[{name}] FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}")
        report.setdefault("check_seconds", {})[name] = round(time.perf_counter() - t, 1)
        out.parent.mkdir(parents=True, exist_ok=True)  # after every check: a timeout keeps what was measured
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    run("generation", lambda: check_generation(model, tok, shape, args, report, bandwidth))
    run("scoring", lambda: check_scoring(model, tok, shape, args, report))
    if "sft" in wanted:
        with tempfile.TemporaryDirectory(prefix="gpu-check-model-") as tmp:
            model.save_pretrained(tmp)  # TRL loads its model from a folder, in fp32
            tok.save_pretrained(tmp)
            del model
            if cuda:
                torch.cuda.empty_cache()
            run("sft", lambda: check_sft(tmp, shape, args, report))
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["ratios"] = {k: report[k]["ratio"] for k in GOALS if isinstance(report.get(k), dict) and "ratio" in report[k]}
    report["meets_goals"] = {k: v >= GOALS[k] for k, v in report["ratios"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log("\nsummary (" + (gpu or device) + f", {args.size}, {report['wall_s']} s):")
    for k, v in report["ratios"].items():
        log(f"  {k:<11} {v:6.3f}  goal >= {GOALS[k]}  {'ok' if v >= GOALS[k] else 'BELOW GOAL'}")
    gen = report.get("generation", {})
    if "hf_backend_roofline_fraction" in gen:
        log(f"  decode roofline fraction: hf backend {gen['hf_backend_roofline_fraction']:.1%}, "
            f"bare generate {gen['bare_generate_roofline_fraction']:.1%}")
    for name, err in report["errors"].items():
        log(f"  {name}: FAILED {err}")
    log(f"gpu_check: wrote {out}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

