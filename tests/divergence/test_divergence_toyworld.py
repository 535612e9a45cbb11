"""Provenance on the toy world: teacher-a's distinctive sentences are teacher-originated (acceptance)."""

from __future__ import annotations

import polars as pl
import pytest
from provenance_reference import provenance_counts, sentence_pairs

from tasks.divergence.provenance import sentence_score_rows
from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer

TOY = __import__("pathlib").Path(__file__).resolve().parents[2] / "toyworld"
MODELS = TOY / "models"
EXPRS = ["8 + 9 - 2 * 3", "3 + 4 * 2 - 6", "9 - 2 * 3 + 1", "6 * 2 - 7 + 5", "8 + 1 - 3 * 3", "2 * 9 - 4 - 6"]

pytestmark = pytest.mark.skipif(
    not (MODELS / "teacher-a").is_dir() or not (MODELS / "student").is_dir(), reason="toy-world models not built"
)


def test_teacher_a_style_has_more_teacher_sentences_than_the_students_style():
    from toyworld.problems import student_trace, teacher_a_trace

    items, style = [], {}
    for i, e in enumerate(EXPRS):
        for name, fn in (("teacher_a", teacher_a_trace), ("student", student_trace)):
            tid = f"{name}-{i}"
            items.append(ScoringItem(tid, f"Compute {e}.", fn(e)))
            style[tid] = name
    cfg = ScoringConfig(device="cpu")
    t = pl.from_arrow(TeacherForcedScorer(MODELS / "teacher-a", cfg, model_id="T").score(items))
    s = pl.from_arrow(TeacherForcedScorer(MODELS / "student", cfg, model_id="S").score(items))
    traces = pl.DataFrame({"trace_id": [it.trace_id for it in items], "completion_text": [it.completion_text for it in items]})
    rows, rejected = sentence_score_rows(traces, pl.concat([t, s]))
    assert rejected == []
    pairs = sentence_pairs(rows, "T", "S", beta=0.1)
    counts = provenance_counts(pairs).with_columns(pl.col("trace_id").replace_strict(style).alias("style"))
    mean = counts.group_by("style").agg(pl.col("n_teacher").mean()).sort("style")
    by_style = dict(zip(mean["style"], mean["n_teacher"]))
    assert by_style["teacher_a"] > by_style["student"] + 1
    # the checking sentence only teacher-a writes is teacher-originated in most traces
    texts = dict(zip(traces["trace_id"], traces["completion_text"]))
    checks = pairs.filter(
        pl.struct("trace_id", "char_start").map_elements(
            lambda r: texts[r["trace_id"]][r["char_start"] :].startswith("Check:"), return_dtype=pl.Boolean
        )
    )
    assert checks.height == len(EXPRS)
    assert (checks["provenance_class"] == "teacher").sum() >= len(EXPRS) - 1
    # and the student's one-line restatement is not teacher-originated
    own = pairs.filter(pl.col("trace_id").str.starts_with("student"))
    assert (own["provenance_class"] != "teacher").sum() >= len(EXPRS) - 1


@pytest.mark.slow
def test_toyworld_provenance_and_random_select_different_datasets_of_equal_size(wh, seed_traces):
    """Teacher traces in the warehouse → divergence flow → select: provenance vs random (acceptance)."""
    from flows.divergence import DivergenceConfig, resolve_model_id, run_divergence
    from flows.select import run_select
    from tasks.select.policies import SelectionConfig
    from toyworld.problems import teacher_a_trace, teacher_b_trace

    a_id, b_id = resolve_model_id(str(MODELS / "teacher-a")), resolve_model_id(str(MODELS / "teacher-b"))
    rows = []
    for i, e in enumerate(EXPRS):
        for mid, fn in ((a_id, teacher_a_trace), (b_id, teacher_b_trace)):
            rows.append({"trace_id": f"{mid[:9]}-{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {e}.",
                         "model_id": mid, "completion_text": fn(e)})
    seed_traces(wh, rows)
    cpu = ScoringConfig(device="cpu")
    for path, mid in ((MODELS / "teacher-a", a_id), (MODELS / "teacher-b", b_id)):
        run_divergence(DivergenceConfig(student=str(MODELS / "student"), teacher=str(path), teacher_model_id=mid, scoring=cpu),
                       warehouse=str(wh.path))
    prov = run_select("provenance", SelectionConfig(budget=len(EXPRS), require_verdict=None), warehouse=str(wh.path),
                      student=str(MODELS / "student"), publish=False)
    rand = run_select("random", SelectionConfig(budget=len(EXPRS), require_verdict=None, seed=1), warehouse=str(wh.path),
                      student=str(MODELS / "student"), publish=False)
    assert prov["n_out"] == rand["n_out"] == len(EXPRS)
    assert set(prov["rows"]["trace_id"]) != set(rand["rows"]["trace_id"])
    counts = wh.query("select teacher_model_id, avg(n_teacher) as n from curated.cur_provenance_traces group by 1")
    assert counts.height == 2 and counts["n"].min() > 0
