"""vLLM backend: the offline engine in a separate worker process under its own interpreter.

vllm cannot share potstill's environment, so `vllm_worker.py` runs under `$POTSTILL_VLLM_PYTHON`
(or engine.vllm_python) and talks JSON lines over stdin/stdout; shards travel as Parquet files.
Prompts are rendered and tokenized here, char offsets computed here, with the model's tokenizer.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.generate.backend import (
    BackendUnavailableError,
    GenerateError,
    local_model_id,
    local_template_hash,
    prompt_text_ids,
    render_prompt_ids,
    render_prompt_text,
)
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.offsets import token_char_starts
from tasks.generate.requests import GenerationRequest, GenerationResult

WORKER = Path(__file__).resolve().parent / "vllm_worker.py"
PREFIX = "POTSTILL_WORKER "
SHARD_TIMEOUT_S = 6 * 3600
INPUT_SCHEMA = pa.schema([
    ("request_key", pa.string()), ("prompt_token_ids", pa.list_(pa.int64())), ("temperature", pa.float64()),
    ("top_p", pa.float64()), ("max_tokens", pa.int64()), ("seed", pa.int64()), ("stop", pa.list_(pa.string())),
    ("logprobs_top_k", pa.int64()),
])


class VLLMWorkerError(BackendUnavailableError):
    """The vLLM worker failed to start, died, or reported a shard error."""


class VLLMBackend:
    def __init__(self, engine: EngineConfig) -> None:
        self.engine = engine
        self._tokenizer = None
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: deque[str] = deque(maxlen=40)
        self._tmp = tempfile.TemporaryDirectory(prefix="potstill-vllm-")
        self._n = 0
        self.vllm_version: str | None = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.engine.model, revision=self.engine.revision)
        return self._tokenizer

    def model_id(self) -> str:
        return local_model_id(self.engine)

    def template_hash(self, sampling: SamplingConfig) -> str:
        return local_template_hash(self.tokenizer, sampling)

    def count_prompt_tokens(self, requests: list[GenerationRequest], use_chat_template: bool) -> tuple[list[int], bool]:
        return [len(render_prompt_ids(self.tokenizer, r, use_chat_template)) for r in requests], True

    def eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id} - {None}
        gen = Path(self.engine.model) / "generation_config.json"
        if gen.exists():
            value = json.loads(gen.read_text()).get("eos_token_id")
            ids.update([value] if isinstance(value, int) else (value or []))
        return ids

    # -- worker process --------------------------------------------------------------------------
    def python(self) -> str:
        python = self.engine.vllm_python or os.environ.get("POTSTILL_VLLM_PYTHON")
        if not python:
            raise GenerateError(
                f"teacher {self.engine.display_name}: the vllm backend needs POTSTILL_VLLM_PYTHON (or engine.vllm_python) "
                "naming a python with vllm and pyarrow installed, e.g. `python -m venv ~/vllm && ~/vllm/bin/pip install vllm pyarrow`"
            )
        return python

    def _start(self) -> None:
        cmd = [self.python(), str(WORKER), "--model", self.engine.model, "--dtype", self.engine.dtype,
               "--gpu-memory-utilization", str(self.engine.gpu_memory_utilization)]
        if self.engine.revision:
            cmd += ["--revision", self.engine.revision]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, bufsize=1)
        except OSError as exc:
            raise GenerateError(f"cannot start the vLLM worker with {cmd[0]}: {exc}") from exc
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self._proc, self._lines), daemon=True).start()
        msg = self._wait(self.engine.startup_timeout_s)
        if msg.get("event") == "unsupported":  # not transient: no retry
            self.close()
            raise GenerateError(f"teacher {self.engine.display_name}: {msg.get('message')}")
        if msg.get("event") == "ready" and msg.get("logprobs_mode") != "raw_logprobs":
            self.close()
            raise GenerateError(f"teacher {self.engine.display_name}: the vLLM worker reports logprobs_mode="
                                f"{msg.get('logprobs_mode')!r}, not 'raw_logprobs'; stored log-probs must be the model's own")
        if msg.get("event") != "ready":
            raise VLLMWorkerError(f"vLLM worker for {self.engine.model} sent {msg} instead of ready")
        self.vllm_version = msg.get("vllm_version")

    @staticmethod
    def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _wait(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise VLLMWorkerError(f"vLLM worker gave no answer within {timeout_s:.0f} s; last output:\n" + "\n".join(self._log))
            try:
                line = self._lines.get(timeout=min(left, 5.0))
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait() if self._proc else None
                self._proc = None
                raise VLLMWorkerError(f"vLLM worker exited with code {code}; last output:\n" + "\n".join(self._log))
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX):])
            self._log.append(line)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin and proc.poll() is None:
                proc.stdin.write(json.dumps({"op": "shutdown"}) + "\n")
                proc.stdin.flush()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest], use_chat_template: bool) -> list[GenerationResult]:
        texts = [render_prompt_text(self.tokenizer, r, use_chat_template) for r in requests]
        prompts = [prompt_text_ids(self.tokenizer, t, use_chat_template) for t in texts]
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self._n += 1
        in_path = os.path.join(self._tmp.name, f"shard-{self._n}.in.parquet")
        out_path = os.path.join(self._tmp.name, f"shard-{self._n}.out.parquet")
        pq.write_table(pa.table({
            "request_key": [r.request_key for r in requests], "prompt_token_ids": prompts,
            "temperature": [r.temperature for r in requests], "top_p": [r.top_p for r in requests],
            "max_tokens": [r.max_tokens for r in requests], "seed": [r.seed for r in requests],
            "stop": [list(r.stop) for r in requests], "logprobs_top_k": [r.logprobs_top_k for r in requests],
        }, schema=INPUT_SCHEMA), in_path)
        t0 = time.perf_counter()
        try:
            self._proc.stdin.write(json.dumps({"op": "generate", "input": in_path, "output": out_path}) + "\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise VLLMWorkerError(f"vLLM worker is gone ({exc}); last output:\n" + "\n".join(self._log)) from exc
        msg = self._wait(SHARD_TIMEOUT_S)
        if msg.get("event") != "done":
            raise VLLMWorkerError(f"vLLM worker failed a shard: {msg.get('message')}\n{msg.get('traceback', '')}")
        latency = (time.perf_counter() - t0) * 1000
        rows = {r["request_key"]: r for r in pq.read_table(out_path).to_pylist()}
        for path in (in_path, out_path):
            os.unlink(path)
        missing = [r.request_key for r in requests if r.request_key not in rows]
        if missing:
            raise VLLMWorkerError(f"vLLM worker output lacks {len(missing)} requests, e.g. {missing[0]}")
        results = [self._result(req, rows[req.request_key], latency) for req in requests]
        for res, text in zip(results, texts):
            res.prompt_context = text
        return results

    def _result(self, req: GenerationRequest, row: dict, latency_ms: float) -> GenerationResult:
        ids, lps = list(row["token_ids"]), list(row["logprobs"])
        top_ids, top_lps = row["top_token_ids"], row["top_logprobs"]
        eos = self.eos_ids()
        while ids and ids[-1] in eos:  # vLLM keeps the EOS id in token_ids; the text never shows it
            ids, lps = ids[:-1], lps[:-1]
        decoded, starts = token_char_starts(self.tokenizer, ids)
        text = row["text"] or ""
        n = len(ids)
        if decoded != text and decoded.startswith(text):  # a stop string: vLLM cuts the text, not the ids
            n = sum(1 for s in starts if s < len(text))
        starts = [min(s, len(text)) for s in starts[:n]]
        k = req.logprobs_top_k
        return GenerationResult(
            request_key=req.request_key, completion_text=text, token_ids=ids[:n], logprobs=lps[:n], char_starts=starts,
            top_token_ids=[list(x) for x in top_ids[:n]] if k and top_ids is not None else None,
            top_logprobs=[list(x) for x in top_lps[:n]] if k and top_lps is not None else None,
            n_prompt_tokens=int(row["n_prompt_tokens"]), n_completion_tokens=n,
            finish_reason=row["finish_reason"] if row["finish_reason"] in ("stop", "length") else "stop",
            latency_ms=latency_ms,
        )
