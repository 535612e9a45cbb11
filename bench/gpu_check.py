"""GPU check (< 5 minutes on one GPU): prints tokens/s and ratios, writes a JSON report.

1. hf backend on CUDA (seeded sampler, log-probs, offsets) vs a bare `model.generate` loop, per toy teacher;
2. teacher-forced scoring (tasks.divergence, when present) vs a bare batched forward pass;
3. a few SFT steps/s of the toy student (plain AdamW loop, bf16 autocast);
4. the vLLM backend when `POTSTILL_VLLM_PYTHON` names a python with vllm.

Needs only torch + transformers + tokenizers (+ pyarrow for scoring/vLLM): it runs under a GPU
machine's own python without potstill's warehouse or Prefect. Uses the built toy models under
toyworld/models/ when present, else random models of the same size.

    bash bench/gpu_check.sh [--prompts 512] [--max-new-tokens 128] [--out bench/results/gpu_check.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def log(msg: str) -> None:
    print(msg, flush=True)


def model_dirs(tmp: Path) -> dict[str, tuple[Path, str]]:
    from toyworld.modeling import ModelSpec, new_model
    from toyworld.vocab import build_tokenizer

    out = {}
    for i, (name, kind) in enumerate((("teacher-a", "teacher"), ("teacher-b", "teacher"), ("student", "student"))):
        built = REPO / "toyworld" / "models" / name
        if (built / "config.json").exists():
            out[name] = (built, "built")
            continue
        tok = build_tokenizer(kind)
        model = new_model(ModelSpec(), tok, seed=i)
        path = tmp / name
        model.save_pretrained(path)
        tok.save_pretrained(path)
        out[name] = (path, "random (toy models not built)")
    return out


def problems(n: int) -> list[str]:
    data = REPO / "toyworld" / "data" / "train.jsonl"
    if data.exists():
        rows = [json.loads(line) for line in data.read_text().splitlines()[:n]]
        if len(rows) == n:
            return [r["problem"] for r in rows]
    return [f"Compute {i % 9 + 1}+{(i * 7) % 9 + 1}*{(i * 5) % 9 + 1}" for i in range(n)]


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bare_generate(model, tok, texts, *, batch_size, max_new_tokens, temperature) -> int:
    import torch

    n = 0
    for i in range(0, len(texts), batch_size):
        chunk = [tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
                 for t in texts[i : i + batch_size]]
        enc = tok(chunk, add_special_tokens=False, padding=True, return_tensors="pt", padding_side="left").to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                                 top_p=1.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            n += next((j for j, t in enumerate(row) if t == tok.eos_token_id), len(row))
    return n


def check_generation(name, path, texts, args, report) -> list[tuple[str, str]]:
    from tasks.generate.config import EngineConfig, SamplingConfig
    from tasks.generate.hf_backend import HFBackend
    from tasks.generate.requests import build_requests

    backend = HFBackend(EngineConfig(model=str(path), name=name, batch_size=args.batch_size, device=args.device))
    model, tok = backend.model, backend.tokenizer
    sampling = SamplingConfig(n=1, temperatures=(args.temperature,), max_tokens=args.max_new_tokens)
    reqs = build_requests([(f"p{i}", t) for i, t in enumerate(texts)], model_id=name, template_hash="gpu-check", sampling=sampling)
    backend.generate(reqs[: args.batch_size], True)  # warm-up
    bare_generate(model, tok, texts[: args.batch_size], batch_size=args.batch_size, max_new_tokens=8, temperature=args.temperature)
    best_hf = best_bare = 0.0
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
    report["generation"][name] = {"device": str(model.device), "dtype": str(model.dtype), "hf_backend_tokens_per_s": best_hf,
                                  "bare_generate_tokens_per_s": best_bare, "ratio": best_hf / best_bare,
                                  "mean_completion_tokens": n_hf / len(reqs)}
    log(f"[generate] {name}: hf backend {best_hf:.0f} tok/s vs bare generate {best_bare:.0f} tok/s -> ratio {best_hf / best_bare:.2f}")
    return [(texts[i], r.completion_text) for i, r in enumerate(results)]


def check_scoring(path, pairs, args, report) -> None:
    try:
        from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer
    except ImportError as exc:
        report["scoring"] = {"skipped": f"tasks.divergence not importable ({exc})"}
        log(f"[scoring] skipped: {exc}")
        return
    import torch

    cfg = ScoringConfig(device=args.device, max_batch_size=args.batch_size)
    scorer = TeacherForcedScorer(str(path), cfg)
    model, tok = scorer.model, scorer.tokenizer
    items = [ScoringItem(f"t{i}", p, c) for i, (p, c) in enumerate(pairs)]
    scorer.score(items[: args.batch_size])
    sync(); t0 = time.perf_counter()
    table = scorer.score(items)
    sync(); dt_scorer = time.perf_counter() - t0
    n_tokens = sum(len(x) for x in table.column("logprobs").to_pylist())

    seqs = []
    for p, c in pairs:
        prompt = tok(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False),
                     add_special_tokens=False)["input_ids"]
        seqs.append((prompt, tok(c, add_special_tokens=False)["input_ids"]))
    sync(); t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(seqs), args.batch_size):
            chunk = seqs[i : i + args.batch_size]
            width = max(len(a) + len(b) for a, b in chunk)
            ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, (a, b) in enumerate(chunk):
                ids[j, : len(a) + len(b)] = torch.tensor(a + b)
                mask[j, : len(a) + len(b)] = 1
            ids, mask = ids.to(model.device), mask.to(model.device)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            logp[:, :-1].gather(-1, ids[:, 1:, None]).cpu()
    sync(); dt_bare = time.perf_counter() - t0
    report["scoring"] = {"scorer_tokens_per_s": n_tokens / dt_scorer, "bare_forward_tokens_per_s": n_tokens / dt_bare,
                         "ratio": dt_bare / dt_scorer}
    log(f"[scoring] teacher-forced scorer {n_tokens / dt_scorer:.0f} tok/s vs bare forward {n_tokens / dt_bare:.0f} tok/s "
        f"-> ratio {dt_bare / dt_scorer:.2f}")


def check_sft(path, pairs, args, report) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toyworld.modeling import collate, encode_example

    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch_size = 32
    examples = [encode_example(tok, p, c) for p, c in pairs]

    def step(k: int) -> float:
        batch = collate(tok, [examples[(k * batch_size + j) % len(examples)] for j in range(batch_size)])
        batch = {key: v.to(device) for key, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for k in range(3):
        step(k)
    sync(); t0 = time.perf_counter()
    for k in range(args.sft_steps):
        loss = step(k)
    sync(); dt = time.perf_counter() - t0
    report["sft"] = {"steps_per_s": args.sft_steps / dt, "batch_size": batch_size, "final_loss": loss, "device": str(device)}
    log(f"[sft] student: {args.sft_steps / dt:.1f} steps/s (batch {batch_size}, bf16 autocast on CUDA), loss {loss:.3f}")


def check_vllm(name, path, texts, args, report) -> None:
    python = os.environ.get("POTSTILL_VLLM_PYTHON")
    if not python:
        report["vllm"] = {"skipped": "POTSTILL_VLLM_PYTHON is not set"}
        log("[vllm] skipped: POTSTILL_VLLM_PYTHON is not set")
        return
    from tasks.generate.config import EngineConfig, SamplingConfig
    from tasks.generate.requests import build_requests
    from tasks.generate.vllm_backend import VLLMBackend

    backend = VLLMBackend(EngineConfig(model=str(path), name=name, backend="vllm", gpu_memory_utilization=0.3))
    sampling = SamplingConfig(n=1, temperatures=(args.temperature,), max_tokens=args.max_new_tokens)
    reqs = build_requests([(f"p{i}", t) for i, t in enumerate(texts)], model_id=name, template_hash="gpu-check", sampling=sampling)
    try:
        backend.generate(reqs[:8], True)
        t0 = time.perf_counter()
        results = backend.generate(reqs, True)
        dt = time.perf_counter() - t0
    finally:
        backend.close()
    n = sum(r.n_completion_tokens for r in results)
    report["vllm"] = {"tokens_per_s": n / dt, "vllm_version": backend.vllm_version}
    log(f"[vllm] {name}: {n / dt:.0f} tok/s (vllm {backend.vllm_version})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sft-steps", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu_check.json"))
    args = ap.parse_args(argv)

    import torch
    import transformers

    report: dict = {"host": platform.node(), "torch": torch.__version__, "transformers": transformers.__version__,
                    "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "args": vars(args), "generation": {}, "errors": {}}
    log(f"gpu_check: torch {torch.__version__}, transformers {transformers.__version__}, gpu {report['gpu']}")
    if not torch.cuda.is_available():
        log("gpu_check: no CUDA device; running the same checks on CPU")
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    dirs = model_dirs(tmp)
    report["models"] = {k: v[1] for k, v in dirs.items()}
    texts = problems(args.prompts)
    pairs: list[tuple[str, str]] = []

    def generate(name: str) -> None:
        got = check_generation(name, dirs[name][0], texts, args, report)
        if not pairs:  # teacher-a's completions feed the scoring and SFT checks
            pairs.extend(got)

    steps = [(f"generate:{n}", lambda n=n: generate(n)) for n in ("teacher-a", "teacher-b")]
    steps += [("scoring", lambda: check_scoring(dirs["student"][0], pairs, args, report)),
              ("sft", lambda: check_sft(dirs["student"][0], pairs or [(t, "<think>\n1+1=2.\n</think>\n\\boxed{2}") for t in texts], args, report)),
              ("vllm", lambda: check_vllm("teacher-a", dirs["teacher-a"][0], texts, args, report))]
    for name, fn in steps:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others' numbers
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"[{name}] FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    log(f"gpu_check: wrote {args.out}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
