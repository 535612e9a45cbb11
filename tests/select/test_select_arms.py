"""The ablation's arms as selection policies: teacher ratio, min teacher count, GRAPE, RSR, length-matched random."""

import polars as pl
import pytest

from tasks.select.policies import SelectionConfig, SelectionError, required_scores, select_traces

# trace, prompt, tokens, n_teacher, n_sentences, student_mean_logprob, rsr
ROWS = [
    ("a1", "A", 30, 5, 10, -1.0, 3.0), ("a2", "A", 80, 6, 30, -0.5, 1.5), ("a3", "A", 20, 1, 3, -2.0, 9.0),
    ("b1", "B", 40, 2, 4, -0.2, 2.0), ("b2", "B", 90, 8, 40, -0.9, 4.0),
    ("c1", "C", 50, 3, 3, -1.5, 0.5), ("c2", "C", 25, 0, 5, -0.1, 7.0),
    ("d1", "D", 60, 4, 8, None, None), ("d2", "D", 70, 1, 9, -0.3, 2.5),
]
CANDIDATES = pl.DataFrame(ROWS, schema=["trace_id", "prompt_id", "n_completion_tokens", "n_teacher", "n_sentences",
                                        "student_mean_logprob", "rsr"], orient="row")
CFG = SelectionConfig(budget=10, require_verdict=None)


def chosen(policy, cfg=CFG, cands=CANDIDATES):
    return sorted(select_traces(cands, policy, cfg).rows["trace_id"].to_list())


@pytest.mark.parametrize("policy, expected", [
    ("provenance", ["a2", "b2", "c1", "d1"]),      # most teacher sentences
    ("teacher_ratio", ["a1", "b1", "c1", "d1"]),   # highest n_teacher / n_sentences
    ("min_teacher", ["a3", "b1", "c2", "d2"]),     # fewest teacher sentences (the paper's sanity arm)
    ("grape", ["a2", "b1", "c2", "d2"]),           # highest mean student log-prob; d1 has none
    ("rsr", ["a2", "b1", "c1", "d2"]),             # lowest rank-surprisal ratio
    ("longest", ["a2", "b2", "c1", "d2"]),
])
def test_per_prompt_rules(policy, expected):
    assert chosen(policy) == expected


def test_budget_below_prompts_draws_prompts_at_random_the_same_for_every_rule():
    prompts = {}
    for policy in ("provenance", "min_teacher", "longest", "random", "teacher_ratio"):
        rows = select_traces(CANDIDATES, policy, SelectionConfig(budget=2, seed=5, require_verdict=None)).rows
        prompts[policy] = sorted(CANDIDATES.join(rows, on="trace_id")["prompt_id"].to_list())
    assert len({tuple(p) for p in prompts.values()}) == 1
    seen = {tuple(sorted(CANDIDATES.join(select_traces(CANDIDATES, "provenance", SelectionConfig(budget=2, seed=s, require_verdict=None)).rows,
                                         on="trace_id")["prompt_id"].to_list())) for s in range(10)}
    assert len(seen) > 1  # not ranked by teacher count: the prompt set changes with the seed


def test_required_scores():
    assert required_scores("grape") == ("student_mean_logprob",) and required_scores("random") == ()
    assert required_scores("length_matched_random") == ("n_teacher",)


def test_missing_score_column_names_the_policy():
    with pytest.raises(SelectionError, match="'rsr'"):
        select_traces(CANDIDATES.drop("rsr"), "rsr", CFG)


def test_length_matched_random_matches_the_reference_length_distribution():
    # 200 prompts, 4 traces each of lengths 20/60/100/140 (+ jitter); provenance favours long traces
    rows = []
    for p in range(200):
        for j, length in enumerate((20, 60, 100, 140)):
            rows.append((f"t{p}_{j}", f"P{p}", length + p % 7, j + (p % 3 == 0) * (3 - 2 * j), 10))
    cands = pl.DataFrame(rows, schema=["trace_id", "prompt_id", "n_completion_tokens", "n_teacher", "n_sentences"], orient="row")
    cfg = SelectionConfig(budget=120, seed=1, require_verdict=None)
    ref = cands.join(select_traces(cands, "provenance", cfg).rows, on="trace_id")
    res = select_traces(cands, "length_matched_random", cfg)
    lm = cands.join(res.rows, on="trace_id")
    rnd = cands.join(select_traces(cands, "random", cfg).rows, on="trace_id")
    assert lm.height == ref.height == 120 and lm["prompt_id"].n_unique() == 120
    assert abs(lm["n_completion_tokens"].mean() - ref["n_completion_tokens"].mean()) < 3
    assert abs(rnd["n_completion_tokens"].mean() - ref["n_completion_tokens"].mean()) > 15
    assert res.params["length_reference"] == "provenance" and res.params["n_unmatched"] == 0
    assert set(lm["trace_id"]) != set(ref["trace_id"])


def test_grape_and_rsr_signals_come_from_the_students_token_rows(wh):
    from flows.select import build_candidates
    from warehouse.runs import utcnow

    now = utcnow()
    wh.load("raw.raw_prompts", pl.DataFrame([{"prompt_id": "P", "source": "toy", "domain": "math", "problem_text": "1+1?",
                                              "reference_answer": "2", "split": "train", "ingested_at": now, "run_id": "r"}]), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame([{"trace_id": t, "prompt_id": "P", "model_id": "teacher", "origin": "imported", "sample_index": i,
                                             "completion_text": "1+1=2", "n_completion_tokens": 3, "is_truncated": False, "created_at": now, "run_id": "r"}
                                            for i, t in enumerate(("t1", "t2", "t3"))]), key=["trace_id"])
    wh.load("raw.raw_token_logprobs", pl.DataFrame([
        {"trace_id": "t1", "model_id": "student", "logprobs": [-1.0, -3.0], "ranks": [1, 150], "char_starts": [0, 1], "run_id": "r"},
        {"trace_id": "t2", "model_id": "student", "logprobs": [-0.5, -0.5], "ranks": None, "char_starts": [0, 1], "run_id": "r"},
        {"trace_id": "t3", "model_id": "teacher", "logprobs": [-0.1], "ranks": [1], "char_starts": [0], "run_id": "r"},
    ], schema_overrides={"ranks": pl.List(pl.Int32)}))
    cands, skipped = build_candidates(wh, student_model_id="student")
    got = {r["trace_id"]: (r["student_mean_logprob"], r["rsr"]) for r in cands.to_dicts()}
    assert got["t1"] == (-2.0, pytest.approx((1 + 100) / 4.0))  # rank clipped at 100; sum of surprisal 4
    assert got["t2"] == (-0.5, None) and got["t3"] == (None, None)  # no ranks stored; not scored by the student
    assert "student_mean_logprob" not in skipped
