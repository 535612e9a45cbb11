"""Generate flow: sample traces from one or several teachers into raw.raw_traces + raw.raw_token_logprobs.

Resumable by request key: a re-run generates only keys not yet in the warehouse; each shard's traces,
log-probs, rejections and shard record commit in one transaction, so a kill loses at most the shard
in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from flows.common import call_task, in_flow
from tasks.generate.accounting import TeacherPlan, format_plan, plan_teacher
from tasks.generate.backend import Backend, GenerateError, make_backend
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.requests import GenerationRequest, build_requests, shard_id_for, shards
from tasks.generate.rows import shard_rows
from warehouse import Warehouse
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

REPO = Path(__file__).resolve().parent.parent
TOY_TEACHERS = ("teacher-a", "teacher-b")
STAGE = "generate"


class SamplingParams(BaseModel):
    """Flow parameter: what to sample (see tasks.generate.config.SamplingConfig for each field)."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(4, ge=1, description="samples per prompt and temperature")
    temperatures: list[float] = Field([0.8], min_length=1, description="n samples at each; 0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    seed: int = 0
    stop: list[str] = Field(default_factory=list)
    use_chat_template: bool = True
    prompt_template: str = "{problem}"
    system_prompt: str | None = None
    logprobs_top_k: int = Field(0, ge=0, le=20, description="top-k alternatives per token (0 = sampled only)")

    def to_config(self) -> SamplingConfig:
        data = self.model_dump()
        return SamplingConfig(**{**data, "temperatures": tuple(data["temperatures"]), "stop": tuple(data["stop"])})


class TeacherSpec(BaseModel):
    """Flow parameter: one teacher and the engine that runs it (tasks.generate.config.EngineConfig)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="local model dir (hf, vllm) or the endpoint's model name (openai)")
    name: str | None = None
    backend: Literal["hf", "openai", "vllm"] = "hf"
    revision: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = Field(32, ge=1)
    cpu_threads: int | None = Field(None, ge=1)
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    tokenizer: str | None = None
    price_in_per_1m: float | None = Field(None, ge=0)
    price_out_per_1m: float | None = Field(None, ge=0)
    vllm_python: str | None = None
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    startup_timeout_s: float = Field(900.0, gt=0)
    sampling: SamplingParams | None = Field(None, description="overrides the run's sampling for this teacher")

    def to_config(self) -> EngineConfig:
        return EngineConfig(**self.model_dump(exclude={"sampling"}))


def toy_teachers() -> list[TeacherSpec]:
    """The toy-world teachers shipped in the repo (the embedded default)."""
    found = [REPO / "toyworld" / "models" / name for name in TOY_TEACHERS]
    missing = [str(p) for p in found if not (p / "config.json").exists()]
    if missing:
        raise GenerateError(f"toy-world teachers not built: {', '.join(missing)}; run `make toyworld` or pass teachers")
    return [TeacherSpec(model=str(p), name=p.name, batch_size=64, cpu_threads=1) for p in found]  # tiny models: 1 thread avoids oversubscription


@task(name="generate-shard", cache_policy=NO_CACHE, tags=["gpu"])
def generate_shard(
    warehouse: str,
    backend: Backend,
    requests: list[GenerationRequest],
    *,
    model_id: str,
    template_hash: str,
    sampling: SamplingConfig,
    run_id: str,
) -> dict:
    """Generate one shard and commit its traces, log-probs, rejections and shard record in one transaction."""
    engine = backend.engine
    shard_id = shard_id_for(r.request_key for r in requests)
    t0 = time.perf_counter()
    results = backend.generate(requests, sampling.use_chat_template)
    wall = time.perf_counter() - t0
    now = utcnow()
    rows = shard_rows(requests, results, model_id=model_id, template_hash=template_hash, engine=engine,
                      sampling=sampling, shard_id=shard_id, run_id=run_id, now=now)
    wh = Warehouse(warehouse)
    with wh.transaction() as con:
        n_traces = wh.load("raw.raw_traces", rows.traces, key=["trace_id"], con=con)
        wh.load("raw.raw_token_logprobs", rows.logprobs, key=["trace_id", "model_id"], con=con)
        record_rejections(wh, rejection_rows(run_id, STAGE, rows.rejections), con=con)
        wh.load("raw.raw_generation_shards", _shard_record(shard_id, run_id, model_id, engine, len(requests),
                n_traces, len(rows.rejections), rows, wall, now), con=con)
    reasons: dict[str, int] = {}
    for _, code, _, _ in rows.rejections:
        reasons[code] = reasons.get(code, 0) + 1
    return {"shard_id": shard_id, "n_generated": n_traces, "n_failed": len(rows.rejections), "reasons": reasons,
            "n_prompt_tokens": rows.n_prompt_tokens, "n_completion_tokens": rows.n_completion_tokens,
            "cost_usd": rows.cost_usd, "wall_s": wall}


def _shard_record(shard_id, run_id, model_id, engine, n_requests, n_generated, n_failed, rows, wall, now):
    import polars as pl

    return pl.DataFrame([{
        "shard_id": shard_id, "run_id": run_id, "model_id": model_id, "backend": engine.backend,
        "n_requests": n_requests, "n_generated": n_generated, "n_failed": n_failed,
        "n_prompt_tokens": rows.n_prompt_tokens, "n_completion_tokens": rows.n_completion_tokens,
        "cost_usd": rows.cost_usd, "wall_s": wall, "committed_at": now,
    }], schema_overrides={"cost_usd": pl.Float64, "committed_at": pl.Datetime("us")})


def _log(message: str) -> None:
    if in_flow():
        get_run_logger().info(message)
    else:
        print(message, flush=True)


def load_prompts(wh: Warehouse, split: str, limit: int | None) -> list[tuple[str, str]]:
    df = wh.run_file("generate/prompts", {"split": split, "limit": None if limit is None else int(limit)})
    return list(zip(df["prompt_id"].to_list(), df["problem_text"].to_list())) if df.height else []


def done_keys(wh: Warehouse, model_id: str) -> set[str]:
    df = wh.run_file("generate/done_keys", {"model_id": model_id})
    return set(df["request_key"].to_list()) if df.height else set()


def mean_completion_tokens(wh: Warehouse, model_id: str) -> float | None:
    return wh.scalar_file("generate/mean_completion_tokens", {"model_id": model_id})


@dataclass
class TeacherWork:
    """One teacher's part of a run: its backend, key material and the requests still missing."""

    engine: EngineConfig
    sampling: SamplingConfig
    backend: Backend
    model_id: str
    template_hash: str
    todo: list[GenerationRequest]
    n_done: int

    @property
    def n_requests(self) -> int:
        return len(self.todo) + self.n_done


def plan_work(wh: Warehouse, prompts, teachers: list[TeacherSpec], sampling: SamplingConfig,
              backend_factory: Callable[[EngineConfig], Backend]) -> list[TeacherWork]:
    """Build every teacher's requests and drop the keys the warehouse already holds (resume)."""
    work = []
    for spec in teachers:
        engine = spec.to_config()
        samp = spec.sampling.to_config() if spec.sampling else sampling
        backend = backend_factory(engine)
        model_id, template_hash = backend.model_id(), backend.template_hash(samp)
        requests = build_requests(prompts, model_id=model_id, template_hash=template_hash, sampling=samp)
        done = done_keys(wh, model_id)
        todo = [r for r in requests if r.request_key not in done]
        work.append(TeacherWork(engine, samp, backend, model_id, template_hash, todo, len(requests) - len(todo)))
    return work


def dry_run_plan(wh: Warehouse, work: list[TeacherWork], n_prompts: int) -> dict:
    """Requests, estimated tokens and cost per teacher; generates and writes nothing."""
    plans: list[TeacherPlan] = []
    for w in work:
        counts, exact = w.backend.count_prompt_tokens(w.todo, w.sampling.use_chat_template)
        plans.append(plan_teacher(
            engine=w.engine, model_id=w.model_id, sampling=w.sampling, n_prompts=n_prompts, n_requests=w.n_requests,
            n_done=w.n_done, todo_prompt_tokens=counts, exact=exact,
            mean_completion_tokens=mean_completion_tokens(wh, w.model_id),
        ))
        w.backend.close()
    _log("generate dry run (nothing generated):\n" + format_plan(plans))
    costs = [p.est_cost_usd for p in plans if p.est_cost_usd is not None]
    return {"dry_run": True, "n_prompts": n_prompts, "n_requests": sum(p.n_todo for p in plans),
            "est_prompt_tokens": sum(p.prompt_tokens for p in plans),
            "est_completion_tokens": sum(p.est_completion_tokens for p in plans),
            "max_completion_tokens": sum(p.max_completion_tokens for p in plans),
            "est_cost_usd": sum(costs) if costs else None, "teachers": [p.as_dict() for p in plans]}


def shard_task(engine: EngineConfig):
    """Retries only where they can help: network endpoints and the vLLM worker process."""
    if engine.backend == "openai":  # on top of the per-request retries with backoff
        return generate_shard.with_options(tags=["network"], retries=2, retry_delay_seconds=[10, 60])
    if engine.backend == "vllm":
        return generate_shard.with_options(retries=1, retry_delay_seconds=[10])
    return generate_shard


class Progress:
    """Rows done / to do and tokens/s, as log lines and a Prefect progress artifact."""

    def __init__(self, run_id: str, total: int) -> None:
        self.total, self.done = total, 0
        self.artifact = create_progress_artifact(progress=0.0, description=f"generate {run_id}: rows done / to do") if in_flow() else None

    def shard(self, teacher: str, n_rows: int, out: dict) -> None:
        self.done += n_rows
        rate = out["n_completion_tokens"] / max(out["wall_s"], 1e-9)
        _log(f"generate: {teacher} shard {out['shard_id']} committed: {self.done}/{self.total} rows "
             f"({100 * self.done / max(self.total, 1):.0f}%), {rate:.0f} tokens/s")
        if self.artifact is not None:
            update_progress_artifact(self.artifact, progress=100.0 * self.done / max(self.total, 1))

    def finish(self) -> None:
        if self.artifact is not None:
            update_progress_artifact(self.artifact, progress=100.0)


def run_teacher(wh: Warehouse, w: TeacherWork, *, run_id: str, shard_size: int, progress: Progress,
                rejections: dict[str, int]) -> dict:
    """Generate one teacher's missing requests, one Prefect task (and one transaction) per shard."""
    st = {"model_id": w.model_id, "backend": w.engine.backend, "n_requests": w.n_requests, "n_already_done": w.n_done,
          "n_generated": 0, "n_failed": 0, "n_prompt_tokens": 0, "n_completion_tokens": 0, "cost_usd": None, "wall_s": 0.0}
    task_obj = shard_task(w.engine)
    for shard in shards(w.todo, shard_size):
        out = call_task(task_obj, wh.path, w.backend, shard, model_id=w.model_id, template_hash=w.template_hash,
                        sampling=w.sampling, run_id=run_id)
        for key in ("n_generated", "n_failed", "n_prompt_tokens", "n_completion_tokens", "wall_s"):
            st[key] += out[key]
        if out["cost_usd"] is not None:
            st["cost_usd"] = (st["cost_usd"] or 0.0) + out["cost_usd"]
        for code, n in out["reasons"].items():
            rejections[code] = rejections.get(code, 0) + n
        progress.shard(w.engine.display_name, len(shard), out)
    w.backend.close()
    st["tokens_per_s"] = st["n_completion_tokens"] / st["wall_s"] if st["wall_s"] else None
    return st


def run_generate(
    *,
    warehouse: str | None = None,
    teachers: list[TeacherSpec] | None = None,
    sampling: SamplingParams | None = None,
    prompt_split: str = "train",
    limit: int | None = None,
    shard_size: int = 128,
    dry_run: bool = False,
    backend_factory: Callable[[EngineConfig], Backend] = make_backend,
) -> dict:
    """The generate stage as a plain function (the flow calls it; so can the CLI, tests and benchmarks).

    `backend_factory` builds each teacher's backend (default `make_backend`; a benchmark passes one
    that returns an already loaded model).
    """
    teachers = teachers or toy_teachers()
    sampling = sampling or SamplingParams()
    wh = Warehouse(warehouse)
    prompts = load_prompts(wh, prompt_split, limit)
    work = plan_work(wh, prompts, teachers, sampling.to_config(), backend_factory)
    if dry_run:
        return dry_run_plan(wh, work, len(prompts))

    config = {"teachers": [t.model_dump(mode="json") for t in teachers], "sampling": sampling.model_dump(mode="json"),
              "sampling_fingerprint": str(sampling.to_config()), "prompt_split": prompt_split, "limit": limit,
              "shard_size": shard_size}
    n_requests, n_todo = sum(w.n_requests for w in work), sum(len(w.todo) for w in work)
    with stage_run(wh, STAGE, config) as run:
        # like every stage, `n_in` is the work this run does (in = out + rejected); the requests
        # a previous run already answered are counted apart
        stats: dict = {"run_id": run.run_id, "n_in": n_todo, "n_out": 0, "n_rejected": 0, "n_requests": n_requests,
                       "n_already_done": n_requests - n_todo, "n_todo": n_todo, "n_prompt_tokens": 0,
                       "n_completion_tokens": 0, "cost_usd": None, "rejections": {}, "teachers": {}}
        run.n_in, run.n_out, run.n_rejected, run.stats = n_todo, 0, 0, stats
        progress, started = Progress(run.run_id, n_todo), time.perf_counter()
        for w in work:
            st = run_teacher(wh, w, run_id=run.run_id, shard_size=shard_size, progress=progress,
                             rejections=stats["rejections"])
            stats["teachers"][w.engine.display_name] = st
            stats["n_out"] += st["n_generated"]
            stats["n_rejected"] += st["n_failed"]
            stats["n_prompt_tokens"] += st["n_prompt_tokens"]
            stats["n_completion_tokens"] += st["n_completion_tokens"]
            if st["cost_usd"] is not None:
                stats["cost_usd"] = (stats["cost_usd"] or 0.0) + st["cost_usd"]
            run.n_out, run.n_rejected = stats["n_out"], stats["n_rejected"]
        stats["wall_s"] = time.perf_counter() - started
        stats["tokens_per_s"] = stats["n_completion_tokens"] / stats["wall_s"] if stats["wall_s"] else None
    progress.finish()
    return stats


@flow(name="generate", flow_run_name="generate-{prompt_split}")
def generate_flow(
    warehouse: str | None = None,
    teachers: list[TeacherSpec] | None = None,
    sampling: SamplingParams | None = None,
    prompt_split: str = "train",
    limit: int | None = None,
    shard_size: int = 128,
    dry_run: bool = False,
) -> dict:
    """Sample `sampling.n` traces per prompt of `prompt_split` at each temperature from every teacher.

    Default teachers: the toy-world teacher-a and teacher-b. Returns the run's stats
    ({run_id, n_in, n_out, n_rejected, n_already_done, tokens, cost, per-teacher stats}); with
    dry_run=True, the plan (requests, estimated tokens and cost) and nothing is generated or written.
    """
    return run_generate(warehouse=warehouse, teachers=teachers, sampling=sampling, prompt_split=prompt_split,
                        limit=limit, shard_size=shard_size, dry_run=dry_run)
