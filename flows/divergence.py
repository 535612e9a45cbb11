"""Divergence flow: teacher-forced log-probs → sentence scores → provenance (docs/methods.md#provenance-tracing).

For every teacher trace not yet done for (student, splitter): score it under the student (always
teacher-forced, on the context the trace was sampled from: `tasks.divergence.context`) and under its teacher when the generation stage did not capture log-probs (needs
the teacher's weights: `teacher=`), map tokens to sentences by character offsets, and commit the
shard's token log-probs, sentence scores and rejections in one transaction. A re-run does only
what is missing. The provenance classes are SQL: `curated.cur_provenance_sentences` /
`cur_provenance_traces` (at the default beta) and their `_at(beta := ...)` table macros.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field, replace

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.divergence.context import recorded_context
from tasks.divergence.provenance import DEFAULT_ALPHA, DEFAULT_BETA, ProvenanceConfig, sentence_score_rows
from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer
from tasks.divergence.sentences import SplitConfig
from tasks.generate.backend import model_id as resolve_model_id
from warehouse import Warehouse
from warehouse.db import query_sql
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

TOKEN_TABLE = "raw.raw_token_logprobs"
SENTENCE_TABLE = "raw.raw_sentence_scores"
STAGE = "divergence"
DEFAULT_SCORING = ScoringConfig()


class DivergenceError(RuntimeError):
    """The divergence stage cannot run as configured; the message says what to do."""


@dataclass(frozen=True)
class DivergenceConfig:
    student: str = field(default="toyworld/models/student", metadata={"help": "student model folder or hub id"})
    teacher: str | None = field(
        default=None, metadata={"help": "teacher model folder for traces whose log-probs were not captured at generation"}
    )
    student_model_id: str = field(default="", metadata={"help": "id stored for the student's scores (default from its folder)"})
    teacher_model_id: str | None = field(
        default=None, metadata={"help": "only traces written by this model id (default: the teacher folder's id, else all)"}
    )
    scoring: ScoringConfig = field(default_factory=ScoringConfig, metadata={"help": "teacher-forced scoring settings"})
    split: SplitConfig = field(default_factory=SplitConfig, metadata={"help": "sentence splitter settings"})
    shard_size: int = field(default=256, metadata={"help": "traces per Prefect task / transaction"})
    prompt_split: str | None = field(default="train", metadata={"help": "only traces of prompts in this split (None = all)"})


@functools.lru_cache(maxsize=3)
def _scorer(path: str, model_id: str, cfg: ScoringConfig) -> TeacherForcedScorer:
    """Models are loaded once per process and reused across shards."""
    return TeacherForcedScorer(path, cfg, model_id=model_id)


def pending_traces(wh: Warehouse, cfg: DivergenceConfig, limit: int | None = None) -> pl.DataFrame:
    """Teacher traces missing teacher or student sentence scores for the current splitter."""
    return wh.run_file("divergence/pending_traces", {
        "student": cfg.student_model_id, "teacher": cfg.teacher_model_id, "prompt_split": cfg.prompt_split,
        "splitter": str(cfg.split), "limit": int(limit) if limit else None,
    })


def _existing_tokens(wh: Warehouse, pairs: pl.DataFrame) -> pl.DataFrame:
    with wh.connect() as con:
        con.register("_want", pairs.to_arrow())
        try:
            rel = con.sql(query_sql("divergence/existing_tokens"))
            return pl.from_arrow(rel.to_arrow_table())
        finally:
            con.unregister("_want")


def _token_rows(scored: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """Rows of raw.raw_token_logprobs from a teacher-forced scoring pass (trace_id, model_id, token_ids,
    logprobs, char_starts)."""
    return scored.with_columns(
        pl.lit("teacher_forced").alias("logprob_source"),
        pl.col("logprobs").list.len().cast(pl.Int32).alias("n_tokens"),
        pl.lit(utcnow()).cast(pl.Datetime("us")).alias("created_at"),
        pl.lit(run_id).alias("run_id"),
    )


def scoring_items(traces: pl.DataFrame, model_id: str) -> list[ScoringItem]:
    """Traces (trace_id, problem_text, completion_text [+ context columns]) as items for `model_id`,
    each on its recorded context where the trace has one."""
    return [ScoringItem(r["trace_id"], r.get("problem_text") or "", r["completion_text"], recorded_context(r, model_id))
            for r in traces.iter_rows(named=True)]


@task(name="divergence-shard", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def score_shard(warehouse: str, shard: pl.DataFrame, cfg: DivergenceConfig, run_id: str) -> dict:
    """Score one shard under the student (and teacher where needed); commit tokens + sentences together."""
    wh = Warehouse(warehouse)
    rejections: list[tuple[str, str, str, str | None]] = []
    new_tokens: list[pl.DataFrame] = []
    stats = {"student_tokens": 0, "teacher_tokens": 0, "scoring_s": 0.0}

    need_student = shard.filter(~pl.col("has_student_tokens"))
    if need_student.height:
        scorer = _scorer(cfg.student, cfg.student_model_id, cfg.scoring)
        table = pl.from_arrow(scorer.score(scoring_items(need_student, cfg.student_model_id)))
        new_tokens.append(table)
        stats["student_tokens"] += scorer.last_tokens
        stats["scoring_s"] += scorer.last_seconds
    need_teacher = shard.filter(~pl.col("has_teacher_tokens"))
    if need_teacher.height:
        mine = need_teacher.filter(pl.lit(cfg.teacher is not None) & (pl.col("model_id") == (cfg.teacher_model_id or "")))
        for r in need_teacher.join(mine.select("trace_id"), on="trace_id", how="anti").iter_rows(named=True):
            rejections.append((r["trace_id"], "teacher_logprobs_missing",
                               f"no log-probs of {r['model_id']} for this trace; pass teacher=<its model folder> to score it", None))
        if mine.height:
            scorer = _scorer(cfg.teacher, cfg.teacher_model_id, cfg.scoring)
            new_tokens.append(pl.from_arrow(scorer.score(scoring_items(mine, cfg.teacher_model_id))))
            stats["teacher_tokens"] += scorer.last_tokens
            stats["scoring_s"] += scorer.last_seconds

    fresh = pl.concat(new_tokens) if new_tokens else None
    want = pl.concat([
        shard.select("trace_id", "model_id"),
        shard.select("trace_id", pl.lit(cfg.student_model_id).alias("model_id")),
    ])
    stored = _existing_tokens(wh, want)
    cols = ["trace_id", "model_id", "logprobs", "char_starts"]
    if fresh is not None:  # freshly scored rows win over stored ones
        stored = pl.concat([fresh.select(cols), stored.select(cols).join(fresh, on=["trace_id", "model_id"], how="anti")])
    tokens = stored.select(cols)
    # only the sentence sets still missing
    todo = pl.concat([
        shard.filter(~pl.col("has_teacher_sentences")).select("trace_id", "model_id"),
        shard.filter(~pl.col("has_student_sentences")).select("trace_id", pl.lit(cfg.student_model_id).alias("model_id")),
    ])
    tokens = tokens.join(todo, on=["trace_id", "model_id"], how="semi")
    sentences, rejected = sentence_score_rows(shard.select("trace_id", "completion_text"), tokens, cfg.split)
    rejections += [(ref, code, detail, None) for ref, code, detail in rejected]
    now = utcnow()
    with wh.transaction() as con:
        n_tok = 0
        if fresh is not None and fresh.height:
            n_tok = wh.load(TOKEN_TABLE, _token_rows(fresh, run_id), key=["trace_id", "model_id"], con=con)
        n_sent = wh.load(
            SENTENCE_TABLE,
            sentences.with_columns(pl.lit(now).cast(pl.Datetime("us")).alias("scored_at"), pl.lit(run_id).alias("run_id")),
            key=["trace_id", "model_id", "splitter", "sentence_index"], con=con,
        )
        record_rejections(wh, rejection_rows(run_id, STAGE, rejections), con=con)
    done = sentences.select("trace_id", "model_id").unique()
    n_done = shard.filter(
        (pl.col("has_teacher_sentences") | pl.col("trace_id").is_in(done.filter(pl.col("model_id") != cfg.student_model_id)["trace_id"].implode()))
        & (pl.col("has_student_sentences") | pl.col("trace_id").is_in(done.filter(pl.col("model_id") == cfg.student_model_id)["trace_id"].implode()))
    ).height
    reasons: dict[str, int] = {}
    for _, code, _, _ in rejections:
        reasons[code] = reasons.get(code, 0) + 1
    return {**stats, "n_traces_done": n_done, "n_rejected": len(rejections), "token_rows": n_tok,
            "sentence_rows": n_sent, "reasons": reasons}


def rescore_unranked(wh: Warehouse, cfg: DivergenceConfig, run_id: str, limit: int | None = None) -> int:
    """Score again, under the student, the traces whose stored student log-probs carry no token ranks
    (scored before ranks were stored); the new rows are appended and, being the latest, are the ones
    read (policy rsr). Returns the number of traces re-scored."""
    todo = wh.run_file("divergence/unranked_traces", {"student": cfg.student_model_id, "prompt_split": cfg.prompt_split,
                                                      "limit": int(limit) if limit else None})
    for lo in range(0, todo.height, cfg.shard_size):
        part = todo.slice(lo, cfg.shard_size)
        scored = pl.from_arrow(_scorer(cfg.student, cfg.student_model_id, cfg.scoring).score(scoring_items(part, cfg.student_model_id)))
        wh.load(TOKEN_TABLE, _token_rows(scored, run_id), mode="append")
    return todo.height


def run_divergence(cfg: DivergenceConfig, *, warehouse: str | None = None, limit: int | None = None,
                   rescore_missing_ranks: bool = False) -> dict:
    """Plain entry point (the flow and tests call it); returns the run's stats.

    `rescore_missing_ranks`: also score again the traces whose student log-probs were stored without ranks."""
    wh = Warehouse(warehouse)
    try:
        wh.columns(TOKEN_TABLE)
    except Exception as exc:  # the table belongs to the generation stage's migrations
        raise DivergenceError(f"{TOKEN_TABLE} does not exist in {wh.path}: apply the generation migrations first") from exc
    if not cfg.student_model_id:
        cfg = replace(cfg, student_model_id=resolve_model_id(cfg.student))
    if cfg.teacher and not cfg.teacher_model_id:
        cfg = replace(cfg, teacher_model_id=resolve_model_id(cfg.teacher))
    totals = {"n_in": 0, "n_out": 0, "n_rejected": 0, "student_tokens": 0, "teacher_tokens": 0, "scoring_s": 0.0,
              "token_rows": 0, "sentence_rows": 0}
    started = time.perf_counter()
    with stage_run(wh, STAGE, cfg) as run:
        run.stats = totals
        pending = pending_traces(wh, cfg, limit)
        totals["n_in"] = run.n_in = pending.height
        for lo in range(0, pending.height, cfg.shard_size):
            out = call_task(score_shard, wh.path, pending.slice(lo, cfg.shard_size), cfg, run.run_id)
            totals["n_out"] += out["n_traces_done"]
            totals["n_rejected"] += out["n_rejected"]
            for k in ("student_tokens", "teacher_tokens", "scoring_s", "token_rows", "sentence_rows"):
                totals[k] += out[k]
            run.count(out["reasons"])
            run.n_out, run.n_rejected = totals["n_out"], totals["n_rejected"]
        if rescore_missing_ranks:
            totals["rescored_for_ranks"] = rescore_unranked(wh, cfg, run.run_id, limit)
        scored = totals["student_tokens"] + totals["teacher_tokens"]
        totals["tokens_per_s"] = round(scored / totals["scoring_s"], 1) if totals["scoring_s"] else None
        totals["wall_s"] = round(time.perf_counter() - started, 3)
        stats = {**totals, "reasons": dict(run.reasons), "student_model_id": cfg.student_model_id,
                 "teacher_model_id": cfg.teacher_model_id, "splitter": str(cfg.split)}
        run.stats = stats
    return {"run_id": run.run_id, **stats}


@flow(name="divergence", flow_run_name="divergence")
def divergence_flow(
    warehouse: str | None = None,
    teacher: str | None = None,
    student: str | None = None,
    teacher_model_id: str | None = None,
    student_model_id: str = "",
    device: str = "auto",
    dtype: str = "auto",
    max_batch_tokens: int = 16384,
    cpu_threads: int | None = None,
    split_scope: str | None = None,
    splitter: str | None = None,
    shard_size: int = 256,
    prompt_split: str | None = "train",
    limit: int | None = None,
    provenance: ProvenanceConfig | None = None,
    rescore_ranks: bool = False,
) -> dict:
    """Score teacher traces under the student (and the teacher where log-probs are missing).

    Args:
        teacher: the teacher's model folder; needed only for traces without captured log-probs.
        teacher_model_id: restrict to traces of this model (default: the teacher folder's id, else all teachers).
        student, split_scope, splitter: the student's model folder or hub id, the splitter's scope and
            version ('sent-v1', or 'sent-v2': lists, LaTeX, code, prices; stored with every sentence
            score); default: the recipe's `provenance:` section (which select reads too), else the
            toy-world student and sent-v1.
        rescore_ranks: also score again, under the student, the traces whose stored student log-probs
            have no token ranks (scored before ranks were stored); policy rsr needs them.
    """
    prov = provenance or ProvenanceConfig()
    split = prov.split
    if split_scope:
        split = replace(split, scope=split_scope)
    if splitter:
        split = replace(split, version=splitter)
    cfg = DivergenceConfig(
        student=student or prov.student or DivergenceConfig.student, teacher=teacher, student_model_id=student_model_id,
        teacher_model_id=teacher_model_id,
        scoring=ScoringConfig(device=device, dtype=dtype, max_batch_tokens=max_batch_tokens, cpu_threads=cpu_threads),
        split=split, shard_size=shard_size, prompt_split=prompt_split,
    )
    stats = run_divergence(cfg, warehouse=warehouse, limit=limit, rescore_missing_ranks=rescore_ranks)
    get_run_logger().info(
        "divergence: %d traces in, %d done, %d rejected %s; %d student + %d teacher tokens at %s tok/s",
        stats["n_in"], stats["n_out"], stats["n_rejected"], stats["reasons"], stats["student_tokens"],
        stats["teacher_tokens"], stats["tokens_per_s"],
    )
    return stats


# -- provenance analysis of a distilled model -------------------------------------------------------
def _verdicts(wh: Warehouse) -> pl.DataFrame | None:
    """(trace_id, answer_status) from the combined verdict, when verification ran."""
    if not wh.has_table("staging.stg_verifications"):
        return None
    df = wh.run_file("divergence/verdicts")
    return df.select("trace_id", pl.when(pl.col("verdict_status").is_in(["correct", "incorrect"]))
                     .then(pl.col("verdict_status")).otherwise(pl.lit("unknown")).alias("answer_status"))


def run_provenance_analysis(
    *,
    warehouse: str | None = None,
    teacher: str,
    student: str,
    distilled: str,
    teacher_model_id: str | None = None,
    student_model_id: str | None = None,
    distilled_model_id: str | None = None,
    split: str = "eval",
    n_prompts: int | None = None,
    sample: bool = True,
    temperature: float = 0.8,
    verify: bool = True,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    n_bins: int = 5,
    out_dir: str = "runs/provenance",
    scoring: ScoringConfig = DEFAULT_SCORING,
) -> dict:
    """Sample D on `split` prompts (unless it has traces there), score every sentence under T, S and D,
    classify (alpha, beta), aggregate by position and correctness into raw.raw_distill_provenance + a PNG."""
    from tasks.common.ids import stable_hash
    from tasks.divergence.analysis import classify_distilled, plot_shares, shares_by_position

    wh = Warehouse(warehouse)
    t_id = teacher_model_id or resolve_model_id(teacher)
    s_id = student_model_id or resolve_model_id(student)
    d_id = distilled_model_id or resolve_model_id(distilled)
    config = {"teacher": t_id, "student": s_id, "distilled": d_id, "alpha": alpha, "beta": beta, "n_bins": n_bins,
              "split": split}
    with stage_run(wh, "divergence-analysis", config, flow_name="provenance-analysis") as run:
        run_id = run.run_id
        have = wh.run_file("divergence/split_traces", {"model_id": d_id, "split": split})
        generated = None
        if have.height == 0 and sample:
            from flows.generate import SamplingParams, TeacherSpec, run_generate

            generated = run_generate(warehouse=wh.path, teachers=[TeacherSpec(model=distilled, device=scoring.device)],
                                     sampling=SamplingParams(n=1, temperatures=[temperature]), prompt_split=split,
                                     limit=n_prompts)
            have = wh.run_file("divergence/split_traces", {"model_id": d_id, "split": split})
        if have.height == 0:
            if not wh.scalar_file("divergence/split_prompt_count", {"split": split}):
                raise DivergenceError(f"no {split!r} prompts in {wh.path}; ingest some first, e.g. `potstill run ingest "
                                      f"--set path=toyworld/data/eval.jsonl --set split={split} --set source=toy-eval`")
            raise DivergenceError(f"no traces of {d_id} on {split!r} prompts; sample the distilled model first (sample=True)")
        if verify:
            try:
                from flows.verify import run_verify
            except ImportError:
                pass
            else:
                run_verify(warehouse=wh.path)
        base = {"teacher": distilled, "teacher_model_id": d_id, "scoring": scoring, "prompt_split": split}
        run_divergence(DivergenceConfig(student=student, student_model_id=s_id, **base), warehouse=wh.path)
        run_divergence(DivergenceConfig(student=teacher, student_model_id=t_id, **base), warehouse=wh.path)
        scores = wh.run_file("divergence/distilled_sentence_scores",
                             {"model_id": d_id, "split": split, "splitter": str(SplitConfig())})
        classified = classify_distilled(scores, t_id, s_id, d_id, alpha=alpha, beta=beta)
        shares = shares_by_position(classified, _verdicts(wh), n_bins)
        analysis_id = "pa_" + stable_hash(t_id, s_id, d_id, alpha, beta, n_bins, sorted(classified["trace_id"].unique().to_list()))
        table = shares.with_columns(
            pl.lit(analysis_id).alias("analysis_id"), pl.lit(d_id).alias("distilled_model_id"),
            pl.lit(t_id).alias("teacher_model_id"), pl.lit(s_id).alias("student_model_id"),
            pl.lit(alpha).alias("alpha"), pl.lit(beta).alias("beta"),
            pl.lit(utcnow()).cast(pl.Datetime("us")).alias("created_at"), pl.lit(run_id).alias("run_id"),
        )
        wh.load("raw.raw_distill_provenance", table,
                key=["analysis_id", "answer_status", "position_bin", "provenance_class"], mode="ignore")
        plot = plot_shares(shares, os.path.join(out_dir, f"{analysis_id}.png"),
                           title=f"Provenance of {d_id}'s sentences (T={t_id}, S={s_id})")
        overall = classified.group_by("provenance_class").len()
        stats = {"analysis_id": analysis_id, "n_traces": classified["trace_id"].n_unique(), "n_sentences": classified.height,
                 "class_counts": dict(zip(overall["provenance_class"].to_list(), overall["len"].to_list())),
                 "plot": str(plot), "generated": (generated or {}).get("n_out")}
        run.n_in, run.n_out, run.n_rejected, run.stats = have.height, classified.height, 0, stats
    return {"run_id": run_id, "n_in": have.height, "n_out": classified.height, "n_rejected": 0, **stats,
            "shares": shares}


@flow(name="provenance-analysis", flow_run_name="provenance-analysis-{split}")
def provenance_analysis_flow(
    warehouse: str | None = None,
    teacher: str = "toyworld/models/teacher-a",
    student: str = "toyworld/models/student",
    distilled: str = "",
    split: str = "eval",
    n_prompts: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    n_bins: int = 5,
    out_dir: str = "runs/provenance",
    device: str = "auto",
) -> dict:
    """Where do the distilled model's sentences come from? (shared | teacher | student | boosted)."""
    if not distilled:
        raise DivergenceError("name the distilled model's folder: distilled=<checkpoint dir>")
    out = run_provenance_analysis(warehouse=warehouse, teacher=teacher, student=student, distilled=distilled, split=split,
                                  n_prompts=n_prompts, alpha=alpha, beta=beta, n_bins=n_bins, out_dir=out_dir,
                                  scoring=ScoringConfig(device=device))
    get_run_logger().info("provenance analysis %s: %d traces, %d sentences, classes %s, plot %s", out["analysis_id"],
                          out["n_traces"], out["n_sentences"], out["class_counts"], out["plot"])
    return {k: v for k, v in out.items() if k != "shares"}


# -- teacher comparison ------------------------------------------------------------------------------
def _score_missing_tokens(wh: Warehouse, traces: pl.DataFrame, model_path: str, model_id: str, cfg: ScoringConfig,
                          run_id: str, shard_size: int = 256) -> int:
    """Teacher-forced log-probs of `traces` (trace_id, problem_text, completion_text) under one model, where missing."""
    done = wh.run_file("divergence/scored_traces", {"model_id": model_id})
    todo = traces.join(done, on="trace_id", how="anti")
    n = 0
    for lo in range(0, todo.height, shard_size):
        part = todo.slice(lo, shard_size)
        scorer = _scorer(model_path, model_id, cfg)
        table = pl.from_arrow(scorer.score(scoring_items(part, model_id)))
        n += wh.load(TOKEN_TABLE, _token_rows(table, run_id), key=["trace_id", "model_id"])
    return n


def run_teacher_comparison(
    *,
    warehouse: str | None = None,
    reference: str,
    reference_model_id: str | None = None,
    teacher_model_ids: list[str] | None = None,
    split: str = "train",
    out_dir: str = "runs/teacher-comparison",
    scoring: ScoringConfig = DEFAULT_SCORING,
) -> dict:
    """Compare teachers on the same prompts into raw.raw_teacher_comparison + a PNG."""
    from tasks.common.ids import stable_hash
    from tasks.divergence.analysis import compare_teachers, perplexity, plot_teacher_comparison

    wh = Warehouse(warehouse)
    ref_id = reference_model_id or resolve_model_id(reference)
    config = {"reference": ref_id, "teachers": teacher_model_ids, "split": split}
    with stage_run(wh, "divergence-compare", config, flow_name="teacher-comparison") as run:
        run_id = run.run_id
        traces = wh.run_file("divergence/comparison_traces", {"split": split, "reference": ref_id})
        if teacher_model_ids:
            traces = traces.filter(pl.col("model_id").is_in(teacher_model_ids))
        if traces["model_id"].n_unique() < 1:
            raise DivergenceError(f"no teacher traces on {split!r} prompts to compare")
        _score_missing_tokens(wh, traces, reference, ref_id, scoring, run_id)
        lps = wh.run_file("divergence/latest_tokens", {"model_id": ref_id})
        ppl = pl.DataFrame({"trace_id": lps["trace_id"], "ppl_reference": [perplexity(x) for x in lps["logprobs"].to_list()]},
                           schema={"trace_id": pl.String, "ppl_reference": pl.Float64})
        verdicts = _verdicts(wh)
        df = traces.join(ppl, on="trace_id", how="left")
        df = (df.join(verdicts.rename({"answer_status": "verdict_status"}), on="trace_id", how="left") if verdicts is not None
              else df.with_columns(pl.lit(None, dtype=pl.String).alias("verdict_status")))
        report = compare_teachers(df)
        comparison_id = "tc_" + stable_hash(ref_id, sorted(report["teacher_model_id"].to_list()), split, df.height)
        table = report.with_columns(
            pl.lit(comparison_id).alias("comparison_id"), pl.lit(ref_id).alias("reference_model_id"),
            pl.lit(utcnow()).cast(pl.Datetime("us")).alias("created_at"), pl.lit(run_id).alias("run_id"),
        )
        wh.load("raw.raw_teacher_comparison", table, key=["comparison_id", "teacher_model_id"], mode="ignore")
        plot = plot_teacher_comparison(report, df, os.path.join(out_dir, f"{comparison_id}.png"))
        stats = {"comparison_id": comparison_id, "plot": str(plot), "teachers": report["teacher_model_id"].to_list()}
        run.n_in, run.n_out, run.n_rejected, run.stats = traces.height, report.height, 0, stats
    return {"run_id": run_id, "n_in": traces.height, "n_out": report.height, "n_rejected": 0, **stats, "report": report}


@flow(name="teacher-comparison", flow_run_name="teacher-comparison-{split}")
def teacher_comparison_flow(
    warehouse: str | None = None,
    reference: str = "toyworld/models/student",
    teacher_model_ids: list[str] | None = None,
    split: str = "train",
    out_dir: str = "runs/teacher-comparison",
    device: str = "auto",
) -> dict:
    """Per teacher on the same prompts: pass rate, lengths, perplexity under `reference`, overthinking markers."""
    out = run_teacher_comparison(warehouse=warehouse, reference=reference, teacher_model_ids=teacher_model_ids,
                                 split=split, out_dir=out_dir, scoring=ScoringConfig(device=device))
    get_run_logger().info("teacher comparison %s:\n%s", out["comparison_id"], out["report"])
    return {k: v for k, v in out.items() if k != "report"} | {"report": out["report"].to_dicts()}


# -- offline on-policy distillation export -------------------------------------------------------------
def run_opd_export(
    *,
    warehouse: str | None = None,
    dataset: str,
    student_model_id: str,
    teacher: str,
    teacher_model_id: str | None = None,
    split: str = "train",
    max_tokens: int | None = None,
    out_dir: str = "runs/opd",
    scoring: ScoringConfig = DEFAULT_SCORING,
) -> dict:
    """Export the SFT student's rollouts with the SFT teacher's per-token log-probs (Lightning OPD).

    Refused (OPDConsistencyError) before anything is scored when `teacher` is not the teacher that
    wrote the SFT data of `dataset` (name@version).
    """
    from tasks.divergence.opd import build_opd_rows, check_teacher_consistency, export_id_for
    from warehouse.datasets import resolve_version

    wh = Warehouse(warehouse)
    t_id = teacher_model_id or resolve_model_id(teacher)
    version = resolve_version(wh, dataset)
    sft = wh.run_file("divergence/dataset_models",
                      {"dataset_name": version.dataset_name, "version": version.version})["model_id"].to_list()
    sft_teacher = check_teacher_consistency(version.spec, sft, t_id)
    config = {"dataset": version.spec, "teacher": t_id, "student": student_model_id, "split": split, "max_tokens": max_tokens}
    with stage_run(wh, "divergence-opd", config, flow_name="opd-export") as run:
        run_id = run.run_id
        rollouts = wh.run_file("divergence/rollouts", {"model_id": student_model_id, "split": split})
        if rollouts.height == 0:
            raise DivergenceError(f"no rollouts of {student_model_id} on {split!r} prompts; generate them with the SFT student first")
        _score_missing_tokens(wh, rollouts, teacher, t_id, scoring, run_id)

        def tokens(model_id: str) -> pl.DataFrame:
            return wh.run_file("divergence/latest_tokens", {"model_id": model_id})

        rows = build_opd_rows(rollouts, tokens(t_id), tokens(student_model_id), teacher_model_id=t_id,
                              student_model_id=student_model_id, max_tokens=max_tokens)
        export_id = export_id_for(rows)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{export_id}.parquet")
        rows.write_parquet(path)
        wh.load("raw.raw_opd_exports", pl.DataFrame([{
            "export_id": export_id, "sft_dataset": version.spec, "sft_teacher_model_id": sft_teacher,
            "scoring_teacher_model_id": t_id, "student_model_id": student_model_id, "n_rollouts": rows.height,
            "n_tokens": int(rows["n_tokens"].sum()), "max_tokens": max_tokens, "path": path,
            "created_at": utcnow(), "run_id": run_id,
        }]), key=["export_id"])
        stats = {"export_id": export_id, "path": path, "n_rollouts": rows.height, "n_tokens": int(rows["n_tokens"].sum()),
                 "n_with_advantage": int(rows["same_tokenization"].sum()), "sft_teacher_model_id": sft_teacher}
        run.n_in, run.n_out, run.n_rejected, run.stats = rollouts.height, rows.height, rollouts.height - rows.height, stats
    return {"run_id": run_id, "n_in": rollouts.height, "n_out": rows.height, "n_rejected": rollouts.height - rows.height, **stats}


@flow(name="opd-export", flow_run_name="opd-export-{dataset}")
def opd_export_flow(
    warehouse: str | None = None,
    dataset: str = "",
    student_model_id: str = "",
    teacher: str = "toyworld/models/teacher-a",
    teacher_model_id: str | None = None,
    split: str = "train",
    max_tokens: int | None = None,
    out_dir: str = "runs/opd",
    device: str = "auto",
) -> dict:
    """Lightning OPD data: the SFT student's rollouts + the SFT teacher's per-token log-probs (refuses a mixed teacher)."""
    return run_opd_export(warehouse=warehouse, dataset=dataset, student_model_id=student_model_id, teacher=teacher,
                          teacher_model_id=teacher_model_id, split=split, max_tokens=max_tokens, out_dir=out_dir,
                          scoring=ScoringConfig(device=device))
