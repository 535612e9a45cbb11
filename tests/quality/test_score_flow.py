"""Score flow against a temp warehouse: signals, length ratios, flags with reasons, prompt stats, re-runs."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from flows.score import run_score

T0 = datetime(2025, 1, 1)
GOOD = "<think>\n5*3=15.\n7+15=22.\n22-4=18.\n</think>\n\\boxed{18}"
LOOP = "<think>\n" + "5*3=15.\n" * 30 + "</think>\n\\boxed{15}"
CUT = "<think>\n5*3=15.\n7+15="


def _seed(wh, traces: list[tuple[str, str, str, int | None]]) -> None:
    wh.load(
        "raw.raw_prompts",
        pl.DataFrame(
            [{"prompt_id": p, "source": "toy", "domain": "math", "problem_text": f"problem {p}", "split": "train",
              "ingested_at": T0, "run_id": "ingest-1"} for p in sorted({t[1] for t in traces})]
        ),
        key=["prompt_id"],
    )
    wh.load(
        "raw.raw_traces",
        pl.DataFrame(
            [{"trace_id": t, "prompt_id": p, "model_id": "teacher-a", "origin": "imported", "sample_index": k,
              "completion_text": text, "n_completion_tokens": n, "is_truncated": False,
              "created_at": T0 + timedelta(seconds=k), "run_id": "ingest-1"}
             for k, (t, p, text, n) in enumerate(traces)]
        ),
        key=["trace_id"],
    )


def _verdicts(wh, rows: list[tuple[str, str, float | None]]) -> None:
    wh.load(
        "raw.raw_verifications",
        pl.DataFrame(
            [{"trace_id": t, "verifier": "math_verify", "verifier_version": "v1", "input_hash": t, "verdict_status": s,
              "verdict_reason": "x", "score": sc, "verified_at": T0, "run_id": "verify-1"} for t, s, sc in rows]
        ),
    )


def _scores(wh) -> dict[tuple[str, str], float]:
    df = wh.query("select trace_id, metric, score from staging.stg_scores")
    return {(r["trace_id"], r["metric"]): r["score"] for r in df.iter_rows(named=True)}


def test_score_flag_and_stats(wh):
    _seed(wh, [("t1", "p1", GOOD, 40), ("t2", "p1", LOOP, 300), ("t3", "p1", CUT, 20), ("t4", "p2", GOOD, 40)])
    _verdicts(wh, [("t1", "correct", 1.0), ("t2", "incorrect", 0.0), ("t3", "timeout", None), ("t4", "correct", 1.0)])
    result = run_score(warehouse=wh.path)
    scores = _scores(wh)
    assert scores[("t1", "length_ratio_to_prompt_median")] == 1.0
    assert scores[("t2", "length_ratio_to_prompt_median")] == 7.5
    assert scores[("t3", "is_truncated")] == 1.0
    assert scores[("t2", "repeated_4gram_fraction")] > 0.5

    flags = wh.query("select trace_id, is_flagged, reason_codes from staging.stg_quality_flags where preset = 'default' order by 1")
    got = {r["trace_id"]: (r["is_flagged"], sorted(r["reason_codes"])) for r in flags.iter_rows(named=True)}
    assert got == {
        "t1": (False, []),
        "t2": (True, ["overthinking", "repetitive"]),
        "t3": (True, ["no_final_answer", "truncated"]),
        "t4": (False, []),
    }
    rejected = wh.query("select source_ref, reason_code from raw.raw_rejections where stage = 'quality' order by 1, 2").rows()
    assert rejected == [("t2", "overthinking"), ("t2", "repetitive"), ("t3", "no_final_answer"), ("t3", "truncated")]

    stats = wh.query("select prompt_id, n_traces, n_verified, pass_rate, difficulty_band from staging.stg_prompt_stats order by 1").rows()
    assert stats == [("p1", 3, 2, 0.5, "medium"), ("p2", 1, 1, 1.0, "solved")]
    assert result["n_in"] == 4 and result["n_rejected"] == 2

    # a re-run with nothing new writes nothing
    n_scores = wh.scalar("select count(*) from raw.raw_scores")
    again = run_score(warehouse=wh.path)
    assert again["n_in"] == 0 and again["flags"]["judged"] == 0 and again["prompt_stats"]["written"] == 0
    assert wh.scalar("select count(*) from raw.raw_scores") == n_scores

    # a new trace of p1 moves p1's median: only p1's ratios and flags are recomputed
    _seed(wh, [("t5", "p1", GOOD, 280)])
    third = run_score(warehouse=wh.path)
    assert third["n_in"] == 1
    assert third["length_ratios_written"] == 4  # t1, t2, t3, t5
    assert _scores(wh)[("t2", "length_ratio_to_prompt_median")] == 300 / 160
    flags = wh.query("select trace_id, reason_codes from staging.stg_quality_flags where trace_id = 't2'")
    assert flags["reason_codes"][0].to_list() == ["repetitive"]  # no longer overthinking


def test_score_flow_under_prefect(prefect_harness, wh):
    from flows.score import score_flow

    _seed(wh, [("t1", "p1", GOOD, 40), ("t2", "p1", CUT, 20)])
    result = score_flow(warehouse=wh.path, preset="format", shard_size=1)
    assert result["flags"]["by_reason"] == {"no_final_answer": 1, "truncated": 1}
    assert wh.query("select status from meta.runs where run_id = ?", [result["run_id"]]).rows() == [("completed",)]
