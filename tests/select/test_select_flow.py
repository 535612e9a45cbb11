"""The select flow over a seeded warehouse: candidate SQL, skipped criteria, publish."""

from __future__ import annotations

import polars as pl
import pytest

from flows.select import build_candidates, run_select
from tasks.select.policies import SelectionConfig
from warehouse.runs import utcnow

TEACHER, STUDENT, SPLITTER = "teacher-a@1", "student@1", "sent-v1:reasoning:1"


def _seed(wh, n_prompts=6, per_prompt=3):
    now = utcnow()
    prompts, traces, verdicts, sentences = [], [], [], []
    for p in range(n_prompts):
        pid = f"p{p}"
        prompts.append({"prompt_id": pid, "source": "t", "domain": "math", "problem_text": f"Compute {p}+{p}.",
                        "split": "train", "ingested_at": now, "run_id": "seed"})
        for k in range(per_prompt):
            tid = f"t{p}_{k}"
            text = "<think>\n" + "\n".join(f"step {j}." for j in range(k + 2)) + "\n</think>\n\\boxed{1}"
            traces.append({"trace_id": tid, "prompt_id": pid, "model_id": TEACHER, "origin": "generated",
                           "sample_index": k, "completion_text": text, "n_completion_tokens": len(text),
                           "is_truncated": False, "temperature": 0.6 if k == 0 else 1.0, "created_at": now, "run_id": "seed"})
            verdicts.append({"trace_id": tid, "prompt_id": pid, "verifier": "math_verify", "verifier_version": "v",
                             "input_hash": tid, "verdict_status": "incorrect" if k == 2 else "correct",
                             "verdict_reason": "x", "score": 1.0, "verified_at": now, "run_id": "seed"})
            # teacher sentences: the teacher is much surer than the student on sentence j < (p + k) % 3
            for j in range(k + 2):
                for model, lp in ((TEACHER, -0.1), (STUDENT, -0.1 if j >= (p + k) % 3 else -3.0)):
                    sentences.append({"trace_id": tid, "sentence_index": j, "char_start": 0, "char_end": 1, "model_id": model,
                                      "n_tokens": 3, "mean_logprob": lp, "splitter": SPLITTER, "scored_at": now, "run_id": "seed"})
    # the student's own traces are never candidates
    traces.append({**traces[0], "trace_id": "own", "model_id": STUDENT})
    wh.load("raw.raw_prompts", pl.DataFrame(prompts), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame(traces), key=["trace_id"])
    wh.load("raw.raw_verifications", pl.DataFrame(verdicts))
    wh.load("raw.raw_sentence_scores", pl.DataFrame(sentences))


def test_candidates_join_available_signals_and_report_missing_ones(wh):
    _seed(wh)
    cands, skipped = build_candidates(wh, student_model_id=STUDENT)
    assert cands.height == 18 and "own" not in cands["trace_id"].to_list()
    assert set(skipped) == {"is_representative", "is_contaminated", "passes_quality", "student_pass_rate", "student_mean_logprob"}
    row = cands.filter(pl.col("trace_id") == "t1_1").to_dicts()[0]
    # p=1, k=1: sentences j < 2 of 3 are teacher sentences
    assert (row["verdict_status"], row["n_teacher"], row["n_sentences"]) == ("correct", 2, 3)
    assert cands.filter(pl.col("trace_id") == "t0_2")["verdict_status"][0] == "incorrect"


def test_provenance_and_random_publish_different_datasets_of_equal_size(wh):
    _seed(wh)
    prov = run_select("provenance", SelectionConfig(budget=5), warehouse=str(wh.path), dataset_name="prov",
                      student_model_id=STUDENT)
    rand = run_select("random", SelectionConfig(budget=5, seed=3), warehouse=str(wh.path), dataset_name="rand",
                      student_model_id=STUDENT)
    assert prov["n_out"] == rand["n_out"] == 5
    assert set(prov["rows"]["trace_id"]) != set(rand["rows"]["trace_id"])
    assert prov["params"]["criteria_skipped"] == ["is_contaminated", "is_representative", "passes_quality"]
    assert prov["n_rejected"] == 13  # the six incorrect traces + seven eligible ones not chosen, each with a reason
    assert wh.scalar("select count(*) from raw.raw_rejections where stage = 'select' and reason_code = 'verdict_not_correct'") == 6
    # per prompt the trace with the most teacher sentences: ties -> fewer tokens
    cands, _ = build_candidates(wh, student_model_id=STUDENT)
    chosen = cands.join(prov["rows"], on="trace_id")
    best = cands.filter(pl.col("verdict_status") == "correct").group_by("prompt_id").agg(pl.col("n_teacher").max())
    assert chosen.join(best, on="prompt_id", suffix="_best").select((pl.col("n_teacher") == pl.col("n_teacher_best")).all()).item()
    for out, policy in ((prov, "provenance"), (rand, "random")):
        assert out["dataset"]["status"] == "published" and out["dataset"]["n_rows"] == 5
        assert wh.scalar("select policy from curated.cur_datasets where dataset_name = ?", [out["dataset"]["dataset_name"]]) == policy
    # same selection again -> the same published version
    again = run_select("provenance", SelectionConfig(budget=5), warehouse=str(wh.path), dataset_name="prov",
                       student_model_id=STUDENT)
    assert again["dataset"]["version"] == prov["dataset"]["version"] and again["dataset"]["is_new"] is False


def test_select_flow_under_prefect(prefect_harness, wh):
    from flows.select import select_flow

    _seed(wh)
    out = select_flow(warehouse=str(wh.path), policy="redi_pairs", budget=4, student_model_id=STUDENT,
                      dataset_name="pairs", options={"seed": 1})
    assert out["n_out"] == 4 and set(out["rows"]["stage"]) == {"positive", "negative"}
    assert out["dataset"]["status"] == "published"
    with pytest.raises(Exception, match="unknown selection option"):
        select_flow(warehouse=str(wh.path), policy="random", options={"nope": 1})
