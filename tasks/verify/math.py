"""Math verification: math-verify `parse` + `verify` in hard-killable workers, and majority vote.

math-verify's own timeout is `signal.alarm`, which raises outside the main thread, so it is
disabled here (`parsing_timeout=None`, `timeout_seconds=None`) and every item runs in a
`DeadlinePool` worker that is SIGKILLed when it overruns (`9^{9^{9^9}}` hangs sympy for minutes).

>>> check_math("\\\\boxed{0.5}", "\\\\frac{1}{2}", MathConfig().verify_params())
('correct', 'answer_matches', 1.0, '\\\\frac{1}{2}', '')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.common.text import split_think
from tasks.verify.math_worker import check_math, parse_answer, same_answer
from tasks.verify.pool import CRASHED, OK, RAISED, TIMEOUT, DeadlinePool, Outcome
from tasks.verify.verdicts import (
    CORRECT,
    ERROR,
    INCORRECT,
    MAJORITY_VERIFIER,
    MATH_VERIFIER,
    UNVERIFIABLE,
    VERDICT_SCHEMA,
    Verdict,
)
from tasks.verify.verdicts import (
    TIMEOUT as TIMEOUT_STATUS,
)

WORKER_MODULES = ("tasks.verify.math_worker",)
REVISION = "r1"  # bump when the verdict logic here or in math_worker.py changes
VOTE_REVISION = "r2"  # bump when the majority vote changes (r2: a deadline per answer and per pair)


@dataclass(frozen=True)
class MathConfig:
    """Knobs of the math verifier; its fingerprint is part of `verifier_version`."""

    float_rounding: int = field(default=6, metadata={"help": "decimal places floats are rounded to (math-verify)"})
    numeric_precision: int = field(default=15, metadata={"help": "significant digits for numeric comparison (math-verify)"})
    strict: bool = field(default=True, metadata={"help": "variables matter; sets are not tuples (math-verify strict mode)"})
    deadline_s: float = field(default=5.0, metadata={"help": "hard wall-clock limit per item; the worker is killed after it"})
    memory_limit_mb: int = field(default=2048, metadata={"help": "address-space limit of each worker process"})
    max_answer_chars: int = field(
        default=8000, metadata={"help": "only the last N characters of the answer are parsed (final answers sit at the end)"}
    )

    def __post_init__(self) -> None:
        for key in ("float_rounding", "numeric_precision", "memory_limit_mb", "max_answer_chars"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"math setting {key} must be an integer >= 1, not {value!r}")
        if not isinstance(self.deadline_s, (int, float)) or not math.isfinite(self.deadline_s) or self.deadline_s <= 0:
            raise ValueError(f"math setting deadline_s must be a finite number of seconds > 0, not {self.deadline_s!r}")

    def verify_params(self) -> tuple:
        return (self.float_rounding, self.numeric_precision, self.strict, self.max_answer_chars)

    def version(self) -> str:
        return f"math-verify-{_mv_version()}-{REVISION}-{config_fingerprint(self)}"

    def __str__(self) -> str:
        return f"MathConfig({config_fingerprint(self)})"


@dataclass(frozen=True)
class VoteConfig:
    """Self-consistency for prompts without a reference answer (QCRD-style majority vote)."""

    min_answers: int = field(default=3, metadata={"help": "fewest traces with a parseable answer before a vote counts"})
    min_agreement: float = field(
        default=0.5, metadata={"help": "the majority answer's share of answered traces must exceed this (clear majority)"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.min_answers, bool) or not isinstance(self.min_answers, int) or self.min_answers < 1:
            raise ValueError(f"vote setting min_answers must be an integer >= 1, not {self.min_answers!r}")
        if not isinstance(self.min_agreement, (int, float)) or not 0 <= self.min_agreement < 1:
            raise ValueError(f"vote setting min_agreement must be in [0, 1), not {self.min_agreement!r}")

    def version(self, math_cfg: MathConfig) -> str:
        return f"vote-{VOTE_REVISION}-{config_fingerprint(self)}+{math_cfg.version()}"

    def __str__(self) -> str:
        return f"VoteConfig({config_fingerprint(self)})"


@lru_cache(maxsize=1)
def _mv_version() -> str:
    from importlib.metadata import version

    return version("math-verify")


# --- parent side ---------------------------------------------------------------------------------


def math_pool(cfg: MathConfig, workers: int | None = None) -> DeadlinePool:
    """A `DeadlinePool` set up for math: workers preload math-verify, limits from `cfg`."""
    return DeadlinePool(workers, deadline_s=cfg.deadline_s, memory_limit_mb=cfg.memory_limit_mb, preload=WORKER_MODULES)


def answer_part(completion: str, is_truncated: bool) -> tuple[str | None, Verdict | None]:
    """The text to parse, or the verdict when there is none (truncated, empty)."""
    split = split_think(completion or "")
    if not split.is_closed:
        return None, Verdict(UNVERIFIABLE, "truncated", detail="reasoning never closed (</think> missing)")
    if not split.answer.strip():
        reason = "truncated" if is_truncated else "answer_missing"
        return None, Verdict(UNVERIFIABLE, reason, detail="nothing after the reasoning block")
    return split.answer, None


def _outcome_verdict(outcome: Outcome) -> Verdict:
    if outcome.kind == OK:
        status, reason, score, extracted, detail = outcome.value
        return Verdict(status, reason, score, extracted, detail)
    if outcome.kind == TIMEOUT:
        return Verdict(TIMEOUT_STATUS, "deadline_exceeded", detail=outcome.detail)
    if outcome.kind == RAISED:
        return Verdict(ERROR, "verifier_raised", detail=outcome.detail)
    assert outcome.kind == CRASHED, outcome.kind
    return Verdict(ERROR, "verifier_crashed", detail=outcome.detail)


def verify_math(items: pl.DataFrame, cfg: MathConfig, pool: DeadlinePool) -> pl.DataFrame:
    """Verdicts for math traces with a reference answer.

    Args:
        items: columns trace_id, prompt_id, completion_text, is_truncated, reference_answer
            (optional: input_hash, passed through).
    Returns:
        one row per input row, columns of `VERDICT_SCHEMA`, verifier `math_verify`.
    """
    rows = items.to_dicts()
    verdicts: list[Verdict | None] = [None] * len(rows)
    jobs, job_rows = [], []
    params = cfg.verify_params()
    for i, row in enumerate(rows):
        answer, early = answer_part(row["completion_text"], bool(row.get("is_truncated")))
        if early is not None:
            verdicts[i] = early
        else:
            jobs.append((answer, row["reference_answer"], params))
            job_rows.append(i)
    elapsed = [0.0] * len(rows)
    for i, outcome in zip(job_rows, pool.map(check_math, jobs, deadline_s=cfg.deadline_s)):
        verdicts[i] = _outcome_verdict(outcome)
        elapsed[i] = outcome.elapsed_s * 1000
    return _frame(rows, verdicts, elapsed, MATH_VERIFIER, cfg.version())


def majority_vote(
    items: pl.DataFrame, vote_cfg: VoteConfig, math_cfg: MathConfig, pool: DeadlinePool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Self-consistency verdicts for prompts without a reference, and one agreement row per prompt.

    Answers are clustered by math-verify equivalence: each answer is parsed in its own pool job and
    each pair compared in its own, under the per-item deadline, so a pathological answer times out
    alone (its trace `timeout`) and the rest of the prompt is still voted. A trace whose
    answer is in a clear majority (share of answered traces > `min_agreement`, at least
    `min_answers` answered) is `correct`; a parseable answer outside it is `incorrect`; with no
    clear majority every answered trace is `unverifiable` (`no_majority`). Score = the share of
    the trace's own answer.

    Args:
        items: columns trace_id, prompt_id, completion_text, is_truncated (optional input_hash).
    Returns:
        (verdicts with verifier `majority_vote`, agreement rows: prompt_id, n_traces, n_answered,
        n_clusters, majority_answer, majority_count, agreement_rate, has_majority, is_complete).
    """
    version = vote_cfg.version(math_cfg)
    rows = items.to_dicts()
    by_prompt: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_prompt.setdefault(row["prompt_id"], []).append(i)
    verdicts: list[Verdict | None] = [None] * len(rows)
    answers: dict[int, str] = {}
    for i, row in enumerate(rows):
        answer, early = answer_part(row["completion_text"], bool(row.get("is_truncated")))
        if early is not None:
            verdicts[i] = early
        else:
            answers[i] = answer
    params = math_cfg.verify_params()
    # Each answer is parsed in its own pool slot and each pair compared in its own, all with the
    # per-item deadline: one pathological answer costs its own slot, never the whole prompt's vote.
    to_parse = sorted(answers)
    parsed_out = pool.map(parse_answer, [(answers[i], params) for i in to_parse], deadline_s=math_cfg.deadline_s)
    extracted: dict[int, str | None] = {}
    elapsed = [0.0] * len(rows)
    for i, outcome in zip(to_parse, parsed_out):
        elapsed[i] += outcome.elapsed_s * 1000
        if outcome.kind == OK:
            extracted[i] = outcome.value
        else:
            verdicts[i] = _outcome_verdict(outcome)  # this answer only: timeout or error, out of the vote
    pairs = [(i, j) for members in by_prompt.values() for a, i in enumerate(members) for j in members[a + 1:]
             if extracted.get(i) is not None and extracted.get(j) is not None]
    pair_out = pool.map(same_answer, [(answers[i], answers[j], params) for i, j in pairs], deadline_s=math_cfg.deadline_s)
    same: dict[tuple[int, int], bool] = {}
    stuck: dict[int, int] = {}
    partners: dict[int, int] = {}
    for (i, j), outcome in zip(pairs, pair_out):
        same[(i, j)] = outcome.kind == OK and bool(outcome.value)
        elapsed[j] += outcome.elapsed_s * 1000
        for k in (i, j):
            partners[k] = partners.get(k, 0) + 1
            if outcome.kind == TIMEOUT:
                stuck[k] = stuck.get(k, 0) + 1
    for k, n in stuck.items():  # an answer whose comparisons mostly hang is out of the vote; a lone hung pair is "different"
        if n * 2 > partners[k]:
            extracted[k] = None
            verdicts[k] = Verdict(TIMEOUT_STATUS, "deadline_exceeded",
                                  detail=f"{n} of {partners[k]} comparisons with other answers ran past {math_cfg.deadline_s:g} s")
    agreement = []
    for prompt_id, members in by_prompt.items():
        reps: list[int] = []
        labels: list[int | None] = []
        for j in members:
            if extracted.get(j) is None:
                labels.append(None)
                continue
            label = next((k for k, r in enumerate(reps) if same.get((r, j))), None)
            if label is None:
                label = len(reps)
                reps.append(j)
            labels.append(label)
        counts: dict[int, int] = {}
        for label in labels:
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
        n_answered = sum(counts.values())
        top = max(counts, key=lambda k: (counts[k], -k)) if counts else None
        top_count = counts.get(top, 0) if top is not None else 0
        has_majority = n_answered >= vote_cfg.min_answers and top_count / n_answered > vote_cfg.min_agreement
        majority_answer = None
        for i, label in zip(members, labels):
            answer = extracted.get(i)
            if label == top and label is not None and majority_answer is None:
                majority_answer = answer
            if verdicts[i] is not None:
                continue
            if label is None:
                verdicts[i] = Verdict(UNVERIFIABLE, "answer_unparseable", detail="no final answer could be extracted")
                continue
            share = counts[label] / n_answered
            detail = f"{counts[label]}/{n_answered} answered traces agree"
            if not has_majority:
                verdicts[i] = Verdict(UNVERIFIABLE, "no_majority", share, answer, detail)
            elif label == top:
                verdicts[i] = Verdict(CORRECT, "agrees_with_majority", share, answer, detail)
            else:
                verdicts[i] = Verdict(INCORRECT, "disagrees_with_majority", share, answer, detail)
        complete = all(verdicts[i] is None or verdicts[i].verdict_status != TIMEOUT_STATUS for i in members)
        agreement.append(
            _agreement_row(prompt_id, len(members), n_answered, len(counts), majority_answer, top_count, has_majority,
                           complete)
        )
    agreement_df = pl.DataFrame(agreement, schema=AGREEMENT_SCHEMA).with_columns(pl.lit(version).alias("verifier_version"))
    return _frame(rows, verdicts, elapsed, MAJORITY_VERIFIER, version), agreement_df


AGREEMENT_SCHEMA = {
    "prompt_id": pl.String,
    "n_traces": pl.Int64,
    "n_answered": pl.Int64,
    "n_clusters": pl.Int64,
    "majority_answer": pl.String,
    "majority_count": pl.Int64,
    "agreement_rate": pl.Float64,
    "has_majority": pl.Boolean,
    "is_complete": pl.Boolean,
}


def _agreement_row(prompt_id, n_traces, n_answered, n_clusters, majority_answer, majority_count, has_majority, complete):
    return {
        "prompt_id": prompt_id,
        "n_traces": n_traces,
        "n_answered": n_answered,
        "n_clusters": n_clusters,
        "majority_answer": majority_answer,
        "majority_count": majority_count,
        "agreement_rate": (majority_count / n_answered) if n_answered else None,
        "has_majority": has_majority,
        "is_complete": complete,
    }


def _frame(rows: list[dict], verdicts: list[Verdict | None], elapsed: list[float], verifier: str, version: str) -> pl.DataFrame:
    out = []
    for row, verdict, ms in zip(rows, verdicts, elapsed):
        assert verdict is not None, row["trace_id"]
        out.append(
            {
                "trace_id": row["trace_id"],
                "prompt_id": row.get("prompt_id"),
                "verifier": verifier,
                "verifier_version": version,
                "input_hash": row.get("input_hash"),
                **asdict(verdict),
                "elapsed_ms": ms,
            }
        )
    return pl.DataFrame(out, schema=VERDICT_SCHEMA)
