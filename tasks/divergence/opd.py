"""Offline on-policy distillation data (Lightning OPD, docs/methods.md#lightning-opd).

Rows are the SFT student's own rollouts with the teacher's log-prob of each rollout token
(sampled token only), truncated to `max_tokens`. Teacher consistency: the teacher that scores the
rollouts must be the teacher that wrote the SFT data; anything else is refused.

When the rollout's own sampled log-probs are known and both models tokenize the rollout into the
same pieces (same character offsets), the per-token advantage `log π_T − log π_student` is filled;
otherwise it is null and `same_tokenization` says why.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl


class OPDConsistencyError(ValueError):
    """The scoring teacher is not the teacher that produced the SFT data."""


def check_teacher_consistency(sft_dataset: str, sft_teacher_ids: list[str], scoring_teacher_id: str) -> str:
    """The single SFT teacher id, or OPDConsistencyError naming what is mixed."""
    teachers = sorted(set(sft_teacher_ids))
    if not teachers:
        raise OPDConsistencyError(f"OPD export refused: dataset {sft_dataset} has no traces, so its teacher is unknown")
    if len(teachers) > 1:
        raise OPDConsistencyError(
            f"OPD export refused: the SFT data {sft_dataset} was written by several teachers ({', '.join(teachers)}); "
            "Lightning OPD needs one teacher for the SFT data and the rollout scores: export from a single-teacher dataset"
        )
    if teachers[0] != scoring_teacher_id:
        raise OPDConsistencyError(
            f"OPD export refused (teacher consistency): the SFT data {sft_dataset} was written by {teachers[0]}, "
            f"but the rollouts would be scored by {scoring_teacher_id}; score them with {teachers[0]}"
        )
    return teachers[0]


OPD_SCHEMA = {
    "trace_id": pl.String, "prompt_id": pl.String, "prompt": pl.String, "completion": pl.String,
    "student_model_id": pl.String, "teacher_model_id": pl.String,
    "teacher_token_ids": pl.List(pl.Int32), "teacher_logprobs": pl.List(pl.Float32), "teacher_char_starts": pl.List(pl.Int32),
    "student_logprobs": pl.List(pl.Float32), "advantage": pl.List(pl.Float32), "same_tokenization": pl.Boolean,
    "n_tokens": pl.Int32, "is_truncated": pl.Boolean,
}


def build_opd_rows(
    rollouts: pl.DataFrame, teacher_tokens: pl.DataFrame, student_tokens: pl.DataFrame | None, *,
    teacher_model_id: str, student_model_id: str, max_tokens: int | None = None,
) -> pl.DataFrame:
    """Join rollouts (trace_id, prompt_id, problem_text, completion_text) with the teacher's token
    log-probs (trace_id, token_ids, logprobs, char_starts) and optionally the student's own."""
    t = {r["trace_id"]: r for r in teacher_tokens.iter_rows(named=True)}
    s = {r["trace_id"]: r for r in student_tokens.iter_rows(named=True)} if student_tokens is not None else {}
    rows = []
    for r in rollouts.iter_rows(named=True):
        tt = t.get(r["trace_id"])
        if tt is None:
            continue
        ids, lps, starts = list(tt["token_ids"] or []), list(tt["logprobs"]), list(tt["char_starts"])
        truncated = max_tokens is not None and len(lps) > max_tokens
        if truncated:
            ids, lps, starts = ids[:max_tokens], lps[:max_tokens], starts[:max_tokens]
        st = s.get(r["trace_id"])
        s_lps = None
        same = False
        adv = None
        if st is not None:
            s_lps = list(st["logprobs"])[: len(lps)]
            same = list(st["char_starts"])[: len(starts)] == starts and len(st["logprobs"]) >= len(lps)
            if same:
                adv = [a - b for a, b in zip(lps, s_lps)]
        rows.append({
            "trace_id": r["trace_id"], "prompt_id": r["prompt_id"], "prompt": r["problem_text"],
            "completion": r["completion_text"], "student_model_id": student_model_id, "teacher_model_id": teacher_model_id,
            "teacher_token_ids": ids, "teacher_logprobs": lps, "teacher_char_starts": starts, "student_logprobs": s_lps,
            "advantage": adv, "same_tokenization": same, "n_tokens": len(lps), "is_truncated": truncated,
        })
    return pl.DataFrame(rows, schema=OPD_SCHEMA).sort("trace_id")


def export_id_for(rows: pl.DataFrame) -> str:
    """Content hash of the export: trace ids, teacher and its log-probs."""
    h = hashlib.sha256(b"potstill-opd-v1\n")
    for tid, teacher, lps in rows.select("trace_id", "teacher_model_id", "teacher_logprobs").iter_rows():
        h.update(json.dumps([tid, teacher, [round(x, 6) for x in lps]]).encode())
    return "opd_" + h.hexdigest()[:16]
