"""Provenance analysis, teacher comparison and OPD export flows on tiny models."""

from __future__ import annotations

import polars as pl
import pytest

from flows.divergence import resolve_model_id, run_opd_export, run_provenance_analysis, run_teacher_comparison
from tasks.divergence.opd import OPDConsistencyError
from tasks.divergence.scoring import ScoringConfig
from warehouse.runs import utcnow

CPU = ScoringConfig(device="cpu")
TEXTS = ["<think>\n5*3=15.\n7+15=22.\nCheck: 22-4=18.\n</think>\n\\boxed{18}", "<think>\n2+2=4. Then 4*3=12!\n</think>\n\\boxed{12}"]


def _verdicts(wh, pairs):
    now = utcnow()
    wh.load("raw.raw_verifications", pl.DataFrame([
        {"trace_id": t, "verifier": "math_verify", "verifier_version": "v", "input_hash": t, "verdict_status": v,
         "verdict_reason": "x", "verified_at": now, "run_id": "seed"} for t, v in pairs
    ]))


def test_provenance_analysis_of_a_distilled_model(wh, tiny_models, seed_traces, tmp_path):
    d_id = resolve_model_id(str(tiny_models["teacher2"]))
    seed_traces(wh, [{"trace_id": f"d{i}", "prompt_id": f"e{i}", "problem_text": f"Compute {i}.", "model_id": d_id,
                      "completion_text": t, "split": "eval"} for i, t in enumerate(TEXTS)])
    _verdicts(wh, [("d0", "correct"), ("d1", "incorrect")])
    out = run_provenance_analysis(warehouse=str(wh.path), teacher=str(tiny_models["teacher"]), student=str(tiny_models["student"]),
                                  distilled=str(tiny_models["teacher2"]), sample=False, verify=False, n_bins=2,
                                  out_dir=str(tmp_path), scoring=CPU)
    assert (out["n_traces"], out["n_sentences"]) == (2, 5)
    assert sum(out["class_counts"].values()) == 5
    table = wh.query("select * from raw.raw_distill_provenance")
    assert set(table["answer_status"]) == {"correct", "incorrect"}
    assert table.group_by("answer_status", "position_bin").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1.0] * 4)
    assert (tmp_path / f"{out['analysis_id']}.png").exists()
    # sentence scores of D's traces exist under all three models
    assert wh.scalar("select count(distinct model_id) from raw.raw_sentence_scores") == 3

    # what a run report includes: the latest analysis (query file) → table + PNG
    from tasks.divergence.analysis import CLASSES, distilled_provenance_report
    from tests.conftest import REPO

    latest = wh.query((REPO / "warehouse" / "queries" / "report_distill_provenance.sql").read_text())
    assert set(latest["analysis_id"]) == {out["analysis_id"]} and latest.height == 2 * 2 * len(CLASSES)
    report, png = distilled_provenance_report(latest, tmp_path / "report")
    assert png.exists() and png.stat().st_size > 1000
    assert report.columns == ["answer_status", "provenance_class", "n_traces", "n_sentences", "share", "pos_0", "pos_1"]
    assert report.height == 2 * len(CLASSES) and report["n_sentences"].sum() == 5
    assert report.group_by("answer_status").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1.0, 1.0])
    want = dict(zip(*[latest.filter((pl.col("answer_status") == "correct") & (pl.col("position_bin") == 1))[c]
                      for c in ("provenance_class", "share")]))
    got = dict(zip(*[report.filter(pl.col("answer_status") == "correct")[c] for c in ("provenance_class", "pos_1")]))
    assert got == pytest.approx(want)


@pytest.mark.slow
def test_teacher_comparison_and_opd_export(wh, tiny_models, seed_traces, tmp_path):
    from warehouse.datasets import publish_dataset

    t_id, t2_id = resolve_model_id(str(tiny_models["teacher"])), resolve_model_id(str(tiny_models["teacher2"]))
    s_id = resolve_model_id(str(tiny_models["student"]))
    rows = []
    for i, text in enumerate(TEXTS):
        rows.append({"trace_id": f"a{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {i}.", "model_id": t_id, "completion_text": text})
        rows.append({"trace_id": f"b{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {i}.", "model_id": t2_id,
                     "completion_text": "Wait, maybe. " + text})
        rows.append({"trace_id": f"s{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {i}.", "model_id": s_id,
                     "completion_text": text.replace("\nCheck: 22-4=18.", "")})
    seed_traces(wh, rows)
    _verdicts(wh, [("a0", "correct"), ("a1", "correct"), ("b0", "correct"), ("b1", "incorrect")])

    cmp = run_teacher_comparison(warehouse=str(wh.path), reference=str(tiny_models["student"]), teacher_model_ids=[t_id, t2_id],
                                 out_dir=str(tmp_path), scoring=CPU)
    rep = {r["teacher_model_id"]: r for r in cmp["report"].to_dicts()}
    assert rep[t_id]["pass_rate"] == 1.0 and rep[t2_id]["pass_rate"] == 0.5
    assert rep[t2_id]["hesitation_per_1k_tokens"] > rep[t_id]["hesitation_per_1k_tokens"]
    assert all(r["mean_ppl_reference"] > 1 for r in rep.values())
    assert wh.scalar("select count(*) from raw.raw_teacher_comparison") == 2

    publish_dataset(wh, "sft-a", pl.DataFrame({"trace_id": ["a0", "a1"]}), "provenance", {}, None, ["seed"])
    with pytest.raises(OPDConsistencyError, match="teacher consistency"):
        run_opd_export(warehouse=str(wh.path), dataset="sft-a@1", student_model_id=s_id, teacher=str(tiny_models["teacher2"]),
                       out_dir=str(tmp_path), scoring=CPU)
    assert wh.scalar("select count(*) from raw.raw_opd_exports") == 0
    out = run_opd_export(warehouse=str(wh.path), dataset="sft-a@latest", student_model_id=s_id, teacher=str(tiny_models["teacher"]),
                         max_tokens=20, out_dir=str(tmp_path), scoring=CPU)
    assert out["n_rollouts"] == 2 and out["sft_teacher_model_id"] == t_id
    exported = pl.read_parquet(out["path"])
    assert exported["n_tokens"].to_list() == [20, 20] and exported["is_truncated"].all()
    assert (exported["teacher_model_id"] == t_id).all()
    rec = wh.query("select * from raw.raw_opd_exports").to_dicts()[0]
    assert (rec["sft_teacher_model_id"], rec["scoring_teacher_model_id"], rec["n_tokens"]) == (t_id, t_id, 40)
