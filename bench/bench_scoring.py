"""Teacher-forced scoring throughput: potstill's scorer vs a bare batched forward pass.

Run: python bench/bench_scoring.py [--traces 64] [--model toyworld/models/student] [--device auto]
Writes bench/results/scoring.json. Both paths see the same traces, the same length-sorted padded
batches and the same model. The baseline is only `model(input_ids, attention_mask).logits` per
batch (no tokenisation, no log_softmax, nothing gathered); potstill's path is the whole scoring
call: chat-template rendering, tokenisation with offsets, batching, the forward pass, chunked
log_softmax + gather, and the Arrow table of per-token log-probs. Ratio = potstill tokens/s over
baseline tokens/s (target >= 0.85). Without the toy-world model a random Llama of the toy size is used.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer

RESULTS = REPO / "bench" / "results"


def synthetic_traces(n: int, seed: int = 0) -> list[ScoringItem]:
    """Arithmetic traces of varied length in the toy world's format."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        steps, acc = [], rng.randint(1, 9)
        for _ in range(rng.randint(2, 14)):
            b, op = rng.randint(1, 9), rng.choice("+-*")
            new = acc + b if op == "+" else acc - b if op == "-" else acc * b
            steps.append(f"{acc}{op}{b}={new}.")
            acc = new
        if rng.random() < 0.5:
            steps.append(f"Check: the result is {acc}.")
        out.append(ScoringItem(f"t{i}", f"Compute the chain number {i}.", "<think>\n" + "\n".join(steps) + f"\n</think>\n\\boxed{{{acc}}}"))
    return out


def random_model_dir(hidden: int = 256, layers: int = 4, vocab: int = 0) -> str:
    """A random Llama with the toy world's shapes and a char-level tokenizer (when toyworld/ has no models yet)."""
    import string

    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    chars = [c for c in string.printable if c not in "\r\x0b\x0c"]
    tk = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + chars)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    torch.manual_seed(0)
    # vocab > the tokenizer's: a real-size output head (only the first ids are ever used as inputs)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=max(vocab, len(tok)), hidden_size=hidden, intermediate_size=3 * hidden,
                                         num_hidden_layers=layers, num_attention_heads=hidden // 64, head_dim=64,
                                         max_position_embeddings=1024))
    path = tempfile.mkdtemp(prefix="bench-scoring-")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def padded_inputs(scorer: TeacherForcedScorer, batches) -> list:
    """The baseline's inputs: each of the scorer's batches as (input_ids, attention_mask), right-padded
    with the scorer's pad id and already on its device, so the baseline times only the forward passes."""
    import torch

    prepared = []
    for batch in batches:
        width = max(e.length for e in batch)
        ids = torch.full((len(batch), width), scorer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, e in enumerate(batch):
            seq = e.prompt_ids + e.completion_ids
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
        prepared.append((ids.to(scorer.device), mask.to(scorer.device)))
    return prepared


def bare_forward(scorer: TeacherForcedScorer, batches) -> float:
    """Seconds for plain padded forward passes over the same batches (inputs prepared beforehand)."""
    import torch

    prepared = padded_inputs(scorer, batches)
    _sync(scorer.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for ids, mask in prepared:
            _ = scorer.model(input_ids=ids, attention_mask=mask).logits
    _sync(scorer.device)
    return time.perf_counter() - t0


def potstill_path(scorer: TeacherForcedScorer, items) -> float:
    _sync(scorer.device)
    t0 = time.perf_counter()
    table = scorer.score(items)
    _sync(scorer.device)
    assert table.num_rows == len(items)
    return time.perf_counter() - t0


def check_against_plain_forward(model_dir: str, device: str, items, n: int = 8) -> float:
    """Max |difference| of per-token log-probs: scorer (fp32, batched, chunked) vs one plain full-logits forward per trace."""
    import torch

    scorer = TeacherForcedScorer(model_dir, ScoringConfig(device=device, dtype="float32", chunk_tokens=97))
    table = scorer.score(items[:n])
    worst = 0.0
    for item, got in zip(items[:n], table["logprobs"].to_pylist()):
        e = scorer.encode(item)
        ids = torch.tensor([e.prompt_ids + e.completion_ids], device=scorer.device)
        with torch.inference_mode():
            logp = torch.log_softmax(scorer.model(input_ids=ids).logits[0].double(), -1)
        p = len(e.prompt_ids)
        want = [logp[p + i - 1, t].item() for i, t in enumerate(e.completion_ids)]
        worst = max(worst, max(abs(a - b) for a, b in zip(got, want)))
    return worst


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=64)
    ap.add_argument("--model", default=str(REPO / "toyworld" / "models" / "student"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-batch-tokens", type=int, default=16384)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--hidden", type=int, default=256, help="random model only")
    ap.add_argument("--layers", type=int, default=4, help="random model only")
    ap.add_argument("--vocab", type=int, default=0, help="random model only: output vocabulary (0 = the tokenizer's)")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    model_dir = args.model if Path(args.model).is_dir() else random_model_dir(args.hidden, args.layers, args.vocab)
    cfg = ScoringConfig(device=args.device, dtype=args.dtype, max_batch_tokens=args.max_batch_tokens)
    scorer = TeacherForcedScorer(model_dir, cfg)
    items = synthetic_traces(args.traces)
    encoded = [scorer.encode(it) for it in items]
    batches = scorer.batches(encoded)
    n_tokens = sum(len(e.completion_ids) for e in encoded)
    t0 = time.perf_counter()
    scorer.encode_many(items)
    encode_s = time.perf_counter() - t0
    n_positions = sum(e.length for e in encoded)
    # warm-up both paths, then interleave repeats and keep the best of each
    potstill_path(scorer, items[:8])
    bare_forward(scorer, scorer.batches(encoded[:8]))
    pot, bare = [], []
    for _ in range(args.repeats):
        bare.append(bare_forward(scorer, batches))
        pot.append(potstill_path(scorer, items))
    result = {
        "model": model_dir if model_dir == args.model else
        f"random llama (hidden {args.hidden}, {args.layers} layers, vocab {scorer.model.config.vocab_size}; toyworld model missing)",
        "device": scorer.device,
        "device_name": torch.cuda.get_device_name(0) if scorer.device.startswith("cuda") else "cpu",
        "dtype": str(next(scorer.model.parameters()).dtype),
        "traces": len(items),
        "batches": len(batches),
        "completion_tokens": n_tokens,
        "positions_incl_prompt": n_positions,
        "potstill_s": round(min(pot), 4),
        "bare_forward_s": round(min(bare), 4),
        "potstill_tokens_per_s": round(n_tokens / min(pot), 1),
        "bare_forward_tokens_per_s": round(n_tokens / min(bare), 1),
        "throughput_ratio": round(min(bare) / min(pot), 3),
        "encode_only_s": round(encode_s, 4),
        "target_ratio": 0.85,
    }
    result["meets_target"] = result["throughput_ratio"] >= result["target_ratio"]
    result["max_abs_logprob_diff_vs_plain_forward"] = check_against_plain_forward(model_dir, scorer.device, items)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("" if scorer.device == "cpu" else "_" + scorer.device.replace(":", "")) + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"scoring{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"scoring throughput ratio (potstill / bare forward): {result['throughput_ratio']:.3f} "
          f"({'meets' if result['meets_target'] else 'BELOW'} the 0.85 target)")
    return result


if __name__ == "__main__":
    main()
