"""Benchmark: the hf backend inside the generate pipeline vs a bare `model.generate` loop.

Same model, prompts, batch size, temperature and max_new_tokens, in one process. The pipeline
path is `flows.generate.run_generate` (rendering, request keys, resume lookup, seeded sampling,
log-probs, char offsets, warehouse writes); the baseline only samples and decodes. Throughput is
completion tokens per second; prints the ratio (target >= 0.9) and writes bench/results/generate.json.

    python bench/bench_generate.py [--prompts 128] [--max-new-tokens 64] [--batch-size 32] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def toy_model_dir(tmp: Path) -> tuple[Path, str]:
    """The toy-world teacher-a when built, else a random model of its size (hidden 256, 4 layers)."""
    built = REPO / "toyworld" / "models" / "teacher-a"
    if (built / "config.json").exists():
        return built, "toyworld/models/teacher-a"
    from toyworld.modeling import ModelSpec, new_model
    from toyworld.vocab import build_tokenizer

    tok = build_tokenizer("teacher")
    model = new_model(ModelSpec(), tok, seed=0)
    path = tmp / "random-teacher"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, "random model of teacher-a's size (toy models not built)"


def problems(n: int) -> list[str]:
    data = REPO / "toyworld" / "data" / "train.jsonl"
    if data.exists():
        rows = [json.loads(line) for line in data.read_text().splitlines()[:n]]
        if len(rows) == n:
            return [r["problem"] for r in rows]
    return [f"Compute {i % 9 + 1}+{(i * 7) % 9 + 1}*{(i * 5) % 9 + 1}" for i in range(n)]


def bare_generate(model, tok, texts: list[str], *, batch_size: int, max_new_tokens: int, temperature: float) -> int:
    """The baseline: a plain batched model.generate loop; returns completion tokens (up to EOS)."""
    import torch

    device = next(model.parameters()).device
    n_tokens = 0
    for i in range(0, len(texts), batch_size):
        chunk = [tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
                 for t in texts[i : i + batch_size]]
        enc = tok(chunk, add_special_tokens=False, padding=True, return_tensors="pt", padding_side="left").to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                                 top_k=0, top_p=1.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        gen = out[:, enc["input_ids"].shape[1] :]
        for row in gen.tolist():
            n_tokens += next((j for j, t in enumerate(row) if t == tok.eos_token_id), len(row))
        tok.batch_decode(gen, skip_special_tokens=True)
    return n_tokens


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for both paths")
    ap.add_argument("--repeats", type=int, default=3, help="alternating timed runs per path (best kept; the CPU is shared)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "generate.json"))
    args = ap.parse_args(argv)

    import polars as pl
    import torch

    from flows.generate import SamplingParams, TeacherSpec, run_generate
    from tasks.generate.hf_backend import HFBackend

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    model_dir, model_desc = toy_model_dir(tmp)
    spec = TeacherSpec(model=str(model_dir), name="bench", batch_size=args.batch_size, device=args.device,
                       cpu_threads=args.threads)
    backend = HFBackend(spec.to_config())
    model, tok = backend.model, backend.tokenizer  # loaded once, outside both timings
    texts = problems(args.prompts)
    sampling = SamplingParams(n=1, temperatures=[args.temperature], max_tokens=args.max_new_tokens)

    bare_generate(model, tok, texts[: args.batch_size], batch_size=args.batch_size, max_new_tokens=4,
                  temperature=args.temperature)  # warm-up
    pipeline_runs, bare_runs = [], []
    for rep in range(args.repeats):
        from warehouse import Warehouse

        wh = Warehouse(tmp / f"wh-{rep}.duckdb")
        wh.load("raw.raw_prompts", pl.DataFrame([
            {"prompt_id": f"p_{i:05d}", "source": "bench", "source_ref": f"bench:{i}", "domain": "math",
             "problem_text": t, "split": "train", "ingested_at": datetime(2026, 1, 1), "run_id": "bench"}
            for i, t in enumerate(texts)
        ]), key=["prompt_id"])
        t0 = time.perf_counter()
        stats = run_generate(warehouse=str(wh.path), teachers=[spec], sampling=sampling,
                             shard_size=max(args.batch_size * 4, 128), backend_factory=lambda engine: backend)
        dt = time.perf_counter() - t0
        pipeline_runs.append({"seconds": dt, "tokens": stats["n_completion_tokens"], "tokens_per_s": stats["n_completion_tokens"] / dt})

        t0 = time.perf_counter()
        n = bare_generate(model, tok, texts, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature)
        dt = time.perf_counter() - t0
        bare_runs.append({"seconds": dt, "tokens": n, "tokens_per_s": n / dt})

    best_pipe = max(r["tokens_per_s"] for r in pipeline_runs)
    best_bare = max(r["tokens_per_s"] for r in bare_runs)
    result = {
        "benchmark": "generate", "model": model_desc, "device": str(next(model.parameters()).device),
        "torch_threads": args.threads, "prompts": args.prompts, "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size, "temperature": args.temperature,
        "pipeline": pipeline_runs, "bare_generate": bare_runs,
        "pipeline_tokens_per_s": best_pipe, "bare_tokens_per_s": best_bare, "ratio": best_pipe / best_bare,
        "target_ratio": 0.9, "host": platform.node(), "at": datetime.now().isoformat(timespec="seconds"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"generate: pipeline {best_pipe:.0f} tok/s vs bare model.generate {best_bare:.0f} tok/s "
          f"-> ratio {best_pipe / best_bare:.2f} (target >= 0.90) [{result['device']}, {model_desc}]")
    return result


if __name__ == "__main__":
    main()
