"""vLLM worker: runs under its own interpreter ($POTSTILL_VLLM_PYTHON) and imports only vllm + pyarrow.

Protocol (one JSON object per line; worker messages on stdout are prefixed with `POTSTILL_WORKER `,
so vLLM's own log lines can share the stream):
  worker -> {"event": "ready", "vllm_version": ..., "logprobs_mode": "raw_logprobs"}  once the model is loaded
  worker -> {"event": "unsupported", "message": ...}          instead, when raw log-probs cannot be pinned; exits
  parent -> {"op": "generate", "input": IN.parquet, "output": OUT.parquet}
  worker -> {"event": "done", "output": OUT.parquet, "n": N} | {"event": "error", "message": ...}
  parent -> {"op": "shutdown"}                                  (or closes stdin)
Input columns: request_key, prompt_token_ids, temperature, top_p, max_tokens, seed, stop, logprobs_top_k.
Output columns: request_key, text, token_ids, logprobs, top_token_ids, top_logprobs, n_prompt_tokens,
finish_reason. The output file is written under a temporary name and renamed, so it is whole or absent.
"""

import argparse
import json
import os
import sys
import traceback

import pyarrow as pa
import pyarrow.parquet as pq

PREFIX = "POTSTILL_WORKER "
# The model's own log-probs (before temperature, top-p or any logits processor): what every stored
# log-prob means. vLLM >= 0.10.2 takes it as an engine argument; its default has changed over versions.
LOGPROBS_MODE = "raw_logprobs"


def say(**message):
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def logprobs_mode_supported(vllm):
    """Whether the installed vLLM takes `logprobs_mode` (an EngineArgs field)."""
    engine_args = getattr(vllm, "EngineArgs", None)
    return "logprobs_mode" in getattr(engine_args, "__dataclass_fields__", {})


def run_shard(llm, SamplingParams, in_path, out_path):
    rows = pq.read_table(in_path).to_pylist()
    params = [
        SamplingParams(
            n=1, temperature=r["temperature"], top_p=r["top_p"], max_tokens=r["max_tokens"], seed=r["seed"],
            stop=list(r["stop"] or []) or None, logprobs=r["logprobs_top_k"],
        )
        for r in rows
    ]
    prompts = [{"prompt_token_ids": list(r["prompt_token_ids"])} for r in rows]
    outputs = llm.generate(prompts, params, use_tqdm=False)
    cols = {k: [] for k in ("request_key", "text", "token_ids", "logprobs", "top_token_ids", "top_logprobs",
                            "n_prompt_tokens", "finish_reason")}
    for row, out in zip(rows, outputs):
        comp = out.outputs[0]
        ids = list(comp.token_ids)
        lps, top_ids, top_lps = [], [], []
        k = row["logprobs_top_k"]
        for tid, position in zip(ids, comp.logprobs or []):
            lps.append(float(position[tid].logprob))
            ranked = sorted(((v.rank, t, v.logprob) for t, v in position.items() if v.rank is not None and v.rank <= k),
                            key=lambda x: x[0])[:k]
            top_ids.append([t for _, t, _ in ranked])
            top_lps.append([float(lp) for _, _, lp in ranked])
        cols["request_key"].append(row["request_key"])
        cols["text"].append(comp.text)
        cols["token_ids"].append(ids)
        cols["logprobs"].append(lps)
        cols["top_token_ids"].append(top_ids if k else None)
        cols["top_logprobs"].append(top_lps if k else None)
        cols["n_prompt_tokens"].append(len(out.prompt_token_ids or row["prompt_token_ids"]))
        cols["finish_reason"].append(comp.finish_reason or "stop")
    table = pa.table(cols, schema=pa.schema([
        ("request_key", pa.string()), ("text", pa.string()), ("token_ids", pa.list_(pa.int64())),
        ("logprobs", pa.list_(pa.float64())), ("top_token_ids", pa.list_(pa.list_(pa.int64()))),
        ("top_logprobs", pa.list_(pa.list_(pa.float64()))), ("n_prompt_tokens", pa.int64()), ("finish_reason", pa.string()),
    ]))
    tmp = out_path + ".partial"
    pq.write_table(table, tmp)
    os.replace(tmp, out_path)
    return len(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--revision", default=None)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    ap.add_argument("--max-model-len", type=int, default=None)
    args = ap.parse_args(argv)

    import vllm
    from vllm import LLM, SamplingParams

    version = getattr(vllm, "__version__", "unknown")
    if not logprobs_mode_supported(vllm):
        say(event="unsupported", vllm_version=version,
            message=f"vllm {version} has no `logprobs_mode` engine argument, so its log-probs may be temperature-scaled "
                    f"(processed) rather than the model's own; install vllm>=0.10.2 (`pip install -U vllm`)")
        return 2
    kwargs = {"model": args.model, "dtype": args.dtype, "gpu_memory_utilization": args.gpu_memory_utilization,
              "logprobs_mode": LOGPROBS_MODE}
    if args.revision:
        kwargs["revision"] = args.revision
    if args.max_model_len:
        kwargs["max_model_len"] = args.max_model_len
    llm = LLM(**kwargs)
    say(event="ready", vllm_version=version, logprobs_mode=LOGPROBS_MODE)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        if msg.get("op") == "shutdown":
            break
        try:
            n = run_shard(llm, SamplingParams, msg["input"], msg["output"])
            say(event="done", output=msg["output"], n=n)
        except Exception as exc:  # noqa: BLE001 - report any shard failure to the parent, keep serving
            say(event="error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-2000:])


if __name__ == "__main__":
    sys.exit(main())
