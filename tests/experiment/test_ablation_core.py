"""Equal arms, enforced: the shared pool, the equality checks, presets and the report."""

import numpy as np
import polars as pl
import pytest

from tasks.experiment.ablation import (
    PAPER_ARMS,
    PRESETS,
    ExperimentError,
    candidates_fingerprint,
    check_equal_data,
    check_equal_training,
    experiment_id_for,
    parse_arm,
    parse_seeds,
    plot_results,
    render_by_domain,
    render_markdown,
    shared_pool,
)
from tasks.experiment.stats import compare_arms, compare_by_domain
from tasks.select.policies import SelectionConfig, select_traces

# trace, prompt, tokens, verdict, n_teacher, n_sentences, text; t_imp* are imported without teacher log-probs or token counts
ROWS = [
    ("a1", "A", 30, "correct", 5, 9, "x" * 30), ("a2", "A", 80, "correct", 6, 20, "x" * 80),
    ("b1", "B", 40, "correct", 2, 4, "x" * 40), ("b2", "B", 90, "correct", 8, 30, "x" * 90),
    ("c1", "C", 50, "correct", 3, 3, "x" * 50), ("c2", "C", 20, "incorrect", 9, 9, "x" * 20),
    ("imp1", "D", 0, "correct", None, None, "imported trace " * 4), ("imp2", "A", 0, "correct", None, None, "imported"),
    ("e1", "E", 0, "correct", 1, 2, "seven tokens here"),
]
CANDS = pl.DataFrame(ROWS, schema=["trace_id", "prompt_id", "n_completion_tokens", "verdict_status", "n_teacher", "n_sentences",
                                   "completion_text"], orient="row")


def words(texts):
    return [len(t.split()) for t in texts]


def test_rows_without_a_needed_score_leave_every_arm_and_are_counted():
    pool, report = shared_pool(CANDS, ["random", "provenance", "longest"], SelectionConfig(), count_tokens=words)
    assert sorted(pool["trace_id"]) == ["a1", "a2", "b1", "b2", "c1", "e1"]
    assert report["excluded_missing_n_teacher"] == 2 and report["n_excluded_missing_scores"] == 2
    assert report["pool_rejections"] == {"verdict_not_correct": 1}
    # random alone needs no score: the imported traces stay, and get a token count instead of 0
    pool_r, report_r = shared_pool(CANDS, ["random"], SelectionConfig(), count_tokens=words)
    tokens = dict(zip(pool_r["trace_id"], pool_r["n_completion_tokens"]))
    assert tokens["imp1"] == 8 and tokens["imp2"] == 1 and tokens["e1"] == 3
    assert report_r["n_tokens_counted_with_student_tokenizer"] == 3


def test_every_arm_gets_the_same_rows_from_the_shared_pool():
    arms = ["random", "provenance", "longest", "teacher_ratio", "min_teacher", "length_matched_random"]
    pool, _ = shared_pool(CANDS, arms, SelectionConfig(), count_tokens=words)
    cands = CANDS.drop("n_completion_tokens").join(pool.select("trace_id", "n_completion_tokens"), on="trace_id")
    sizes = []
    for arm in arms:
        res = select_traces(cands, parse_arm(arm)[0], SelectionConfig(budget=3, seed=1))
        sizes.append({"arm": arm, "seed": 1, "n_rows": res.rows.height, "n_tokens": res.params["n_tokens"]})
    assert {s["n_rows"] for s in sizes} == {3}
    check_equal_data(sizes, "traces", 90)


def test_missing_score_column_names_the_arm():
    with pytest.raises(ExperimentError, match=r"\['grape'\] need the score 'student_mean_logprob'"):
        shared_pool(CANDS, ["random", "grape"], SelectionConfig(), count_tokens=words)


def test_a_score_no_trace_has_refuses_in_one_line_naming_what_to_rerun():
    # a warehouse scored before migration 0160: the student's log-probs are there, its token ranks are not
    cands = CANDS.with_columns(student_mean_logprob=pl.lit(-1.0), rsr=pl.lit(None, pl.Float64))
    with pytest.raises(ExperimentError, match=r"\['rsr'\] need the score 'rsr', which none of the 6 eligible traces has; .*"
                                              r"potstill run divergence --set rescore_ranks=true"):
        shared_pool(cands, ["random", "provenance", "rsr"], SelectionConfig(), count_tokens=words)
    # some traces ranked: the others leave every arm, counted
    part = CANDS.with_columns(student_mean_logprob=pl.lit(-1.0), rsr=pl.when(pl.col("trace_id").is_in(["a1", "b2", "c1"])).then(2.0))
    pool, report = shared_pool(part, ["random", "rsr"], SelectionConfig(), count_tokens=words)
    assert sorted(pool["trace_id"]) == ["a1", "b2", "c1"] and report["excluded_missing_rsr"] == 5


@pytest.mark.parametrize("arms, unit, match", [
    ([("random", 3, 90), ("provenance", 2, 70)], "traces", "different numbers of rows"),
    ([("random", 3, 90), ("provenance", 5, 300)], "tokens", "token totals differ by 210"),
    ([("random", 0, 0), ("provenance", 0, 0)], "traces", "selected nothing"),
])
def test_unequal_data_is_refused(arms, unit, match):
    with pytest.raises(ExperimentError, match=match):
        check_equal_data([{"arm": a, "seed": 0, "n_rows": r, "n_tokens": t} for a, r, t in arms], unit, 100)


def test_token_matched_arms_within_one_trace_pass():
    check_equal_data([{"arm": "random", "seed": 0, "n_rows": 3, "n_tokens": 950}, {"arm": "longest", "seed": 0, "n_rows": 2, "n_tokens": 990}],
                     "tokens", 100)


def test_truncated_or_unequal_training_is_refused():
    ok = {"arm": "random", "seed": 0, "n_steps": 800, "is_truncated": False, "truncation_reason": None}
    check_equal_training([ok, {**ok, "arm": "provenance"}])
    with pytest.raises(ExperimentError, match="different numbers of steps.*longest/s0=696"):
        check_equal_training([ok, {**ok, "arm": "longest", "n_steps": 696}])
    with pytest.raises(ExperimentError, match="truncated \\(time_cap"):
        check_equal_training([ok, {**ok, "arm": "longest", "n_steps": 696, "is_truncated": True, "truncation_reason": "time_cap: 4 min"}])
    check_equal_training([ok, {**ok, "arm": "provenance"}], planned_steps=800)
    with pytest.raises(ExperimentError, match="trained 800 steps, not the experiment's 300"):
        check_equal_training([ok, {**ok, "arm": "provenance"}], planned_steps=300)


def test_arms_seeds_presets():
    assert parse_arm("random#2") == ("random", 2) and parse_arm("rsr") == ("rsr", 0)
    with pytest.raises(ExperimentError, match="unknown policy"):
        parse_arm("best")
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(ExperimentError, match="distinct"):
        parse_seeds("0,0")
    assert set(PAPER_ARMS) == {"random", "provenance", "teacher_ratio", "min_teacher", "longest", "grape", "rsr", "length_matched_random"}
    assert PRESETS["paper"].seeds == (0, 1, 2) and PRESETS["quick"].seeds == (0,) and "random" in PRESETS["quick"].arms
    a = experiment_id_for(["random", "provenance"], 100, "traces", [0, 1], "s", "t", "e", "h", "d")
    assert a == experiment_id_for(["provenance", "random"], 100, "traces", [1, 0], "s", "t", "e", "h", "d")
    assert a != experiment_id_for(["provenance", "random"], 100, "traces", [0], "s", "t", "e", "h", "d")
    assert a != experiment_id_for(["random", "provenance"], 100, "traces", [0, 1], "s", "t", "e", "h", "grown")


def test_candidates_fingerprint_follows_the_data_and_settings_not_row_order():
    """Another pool (a trace more, a re-scored trace) or another oracle pattern is another experiment;
    the same rows in another order are the same one."""
    c = pl.DataFrame({"trace_id": ["t2", "t1", "t3"], "n_teacher": [3, 1, 2], "teacher_ratio": [0.5, 0.25, None]})
    fp = candidates_fingerprint(c, "student", "train", "→")
    assert fp == candidates_fingerprint(c.reverse(), "student", "train", "→")
    assert fp != candidates_fingerprint(c.head(2), "student", "train", "→")
    assert fp != candidates_fingerprint(c.with_columns(n_teacher=pl.Series([3, 1, 4])), "student", "train", "→")
    assert fp != candidates_fingerprint(c, "student", "train", None)


def test_markdown_and_plot_carry_intervals_and_verdicts(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"arm": arm, "seed": s, "problem_id": f"p{i}", "correct": int(rng.random() < p)}
            for arm, p in (("random", 0.5), ("corrupted", 0.1)) for s in (0, 1) for i in range(200)]
    compared = compare_arms(pl.DataFrame(rows))
    summary = compared.with_columns(n_rows=pl.lit(300.0), n_tokens=pl.lit(27000.0), mean_trace_tokens=pl.lit(90.0), n_steps=pl.lit(800))
    md = render_markdown(summary, title="t", notes=["n"])
    assert "| random | 2 | 300 | 27000 | 90 | 800 |" in md and "(reference)" in md
    line = next(x for x in md.splitlines() if x.startswith("| corrupted"))
    assert line.endswith("| worse |") and "[-" in line
    png = plot_results(summary, tmp_path / "r.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_by_domain_shows_where_a_difference_comes_from():
    """An arm that loses code and gains nothing on math: overall it is one number, by domain the two differ."""
    rng = np.random.default_rng(1)
    rows = [{"arm": arm, "seed": s, "problem_id": f"{d}{i}", "domain": d,
             "correct": int(rng.random() < (0.2 if (arm, d) == ("math_only", "code") else 0.6))}
            for arm in ("random", "math_only") for s in (0, 1) for d in ("math", "code") for i in range(150)]
    by = compare_by_domain(pl.DataFrame(rows))
    assert by.filter(pl.col("arm") == "math_only").select("domain", "verdict").rows() == [
        ("code", "worse"), ("math", "no detectable difference")]
    md = render_by_domain(by)
    assert "## By domain" in md and "| code | math_only | 150 |" in md and md.count("(reference)") == 2
    one = pl.DataFrame(rows).filter(pl.col("domain") == "math")
    assert compare_by_domain(one).height == 0 and render_by_domain(compare_by_domain(one)) == ""
    assert compare_by_domain(pl.DataFrame(rows).drop("domain")).height == 0
