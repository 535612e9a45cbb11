"""Quality cores: per-trace signals, length ratios, filter presets, prompt difficulty stats."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.quality.filters import PRESETS, QualityError, apply_filters, preset
from tasks.quality.prompt_stats import PromptStatsConfig, prompt_stats
from tasks.quality.signals import TRACE_METRICS, length_ratios, trace_signals

GOOD = "<think>\n5*3=15.\n7+15=22.\n22-4=18.\n</think>\n\\boxed{18}"


def _signals(text: str, **cols) -> dict[str, float]:
    df = pl.DataFrame({"trace_id": ["t"], "completion_text": [text], **{k: [v] for k, v in cols.items()}})
    out = trace_signals(df)
    return dict(zip(out["metric"].to_list(), out["score"].to_list()))


def test_every_metric_is_emitted_once():
    out = trace_signals(pl.DataFrame({"trace_id": ["a", "b"], "completion_text": [GOOD, ""]}))
    assert out.height == 2 * len(TRACE_METRICS)
    assert sorted(set(out["metric"].to_list())) == sorted(TRACE_METRICS)


@pytest.mark.parametrize(
    ("text", "cols", "metric", "expected"),
    [
        (GOOD, {"domain": "math"}, "has_final_answer", 1.0),
        (GOOD, {"domain": "math"}, "has_reasoning", 1.0),
        (GOOD, {"domain": "math"}, "is_truncated", 0.0),
        ("<think>\n5*3=15.\n7+15=", {"domain": "math"}, "is_truncated", 1.0),  # unclosed think
        ("<think>\n5*3=15.\n7+15=", {"domain": "math"}, "has_final_answer", 0.0),
        (GOOD, {"finish_reason": "length"}, "is_truncated", 1.0),
        (GOOD, {"is_truncated": True}, "is_truncated", 1.0),
        ("<think>x</think>\nThe answer is 18.", {"domain": "math"}, "has_final_answer", 0.0),  # no \boxed
        ("<think>x</think>\n```python\ndef f(x):\n    return x\n```", {"domain": "code"}, "has_final_answer", 1.0),
        ("<think>x</think>\nreturn x", {"domain": "code"}, "has_final_answer", 0.0),
        ("The answer is 4.", {}, "has_reasoning", 0.0),
        (GOOD, {"n_completion_tokens": 40}, "completion_tokens", 40.0),
        ("a b c d a b c d", {}, "repeated_4gram_fraction", 0.2),
        ("x=1.\ny=2.\nx=1.\nx=1.", {}, "repeated_paragraph_count", 2.0),
        ("<think>\nfirst idea\n\nsecond idea\n\nthird\n</think>\n\\boxed{1}", {}, "paragraph_count", 3.0),
        ("wait maybe but", {"n_completion_tokens": 100}, "hesitation_per_1k", 30.0),
        ("Wait, WAIT. Perhaps.", {"n_completion_tokens": 1000}, "hesitation_per_1k", 3.0),
        ("the answer 是 4", {}, "script_mixing_ratio", pytest.approx(0.1)),
        ("let alpha α and π be angles", {}, "script_mixing_ratio", 0.0),  # Greek is math, not mixing
    ],
)
def test_signal_values(text, cols, metric, expected):
    assert _signals(text, **cols)[metric] == expected


def test_length_ratio_is_per_prompt():
    df = pl.DataFrame(
        {"trace_id": ["a", "b", "c", "d"], "prompt_id": ["p", "p", "p", "q"], "completion_tokens": [10.0, 30.0, 20.0, 0.0]}
    )
    out = length_ratios(df)
    assert out["score"].to_list() == [0.5, 1.5, 1.0, None]
    assert set(out["metric"].to_list()) == {"length_ratio_to_prompt_median"}


def _scores(**by_trace: dict[str, float]) -> pl.DataFrame:
    rows = [{"trace_id": t, "metric": m, "score": s} for t, metrics in by_trace.items() for m, s in metrics.items()]
    return pl.DataFrame(rows)


def test_presets_flag_with_reason_codes():
    scores = _scores(
        ok={"is_truncated": 0, "has_reasoning": 1, "has_final_answer": 1, "repeated_4gram_fraction": 0.1, "length_ratio_to_prompt_median": 1.0},
        trunc={"is_truncated": 1, "has_reasoning": 1, "has_final_answer": 0},
        loop={"is_truncated": 0, "has_reasoning": 1, "has_final_answer": 1, "repeated_4gram_fraction": 0.7, "repeated_paragraph_count": 5},
        long={"is_truncated": 0, "has_reasoning": 1, "has_final_answer": 1, "length_ratio_to_prompt_median": 2.5},
    )
    default = apply_filters(scores, "default")
    got = sorted(zip(default["trace_id"].to_list(), default["reason_code"].to_list()))
    assert got == [("loop", "repetitive"), ("trunc", "no_final_answer"), ("trunc", "truncated")]
    strict = apply_filters(scores, "strict")
    assert ("long", "overthinking") in set(zip(strict["trace_id"].to_list(), strict["reason_code"].to_list()))
    assert apply_filters(scores, "none").height == 0
    assert set(default["preset"].to_list()) == {"default"}
    assert "repeated_4gram_fraction = 0.7 > 0.5" in default.filter(pl.col("trace_id") == "loop")["detail"][0]


def test_preset_overrides_and_errors():
    cfg = preset("default", overthinking__length_ratio_to_prompt_median=2.0)
    scores = _scores(long={"length_ratio_to_prompt_median": 2.5})
    assert apply_filters(scores, cfg)["reason_code"].to_list() == ["overthinking"]
    assert str(cfg) != str(PRESETS["default"])  # the fingerprint names the thresholds
    with pytest.raises(QualityError, match="unknown filter preset 'bogus'"):
        preset("bogus")
    with pytest.raises(QualityError, match="has no rule"):
        preset("format", overthinking__length_ratio_to_prompt_median=2.0)


def test_prompt_stats_pass_rate_cv_band():
    traces = pl.DataFrame(
        {
            "trace_id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1"],
            "prompt_id": ["p"] * 4 + ["q"] * 2 + ["r"],
            "model_id": ["teacher"] * 4 + ["teacher"] * 2 + ["student"],
        }
    )
    verdicts = pl.DataFrame(
        {
            "trace_id": ["a1", "a2", "a3", "a3", "a4", "b1", "b2", "c1"],
            "verifier": ["math", "math", "math", "judge", "math", "math", "math", "math"],
            "verdict_status": ["correct", "correct", "correct", "incorrect", "timeout", "correct", "correct", "error"],
            "score": [1.0, 1.0, 1.0, 0.0, None, 1.0, 1.0, None],
        }
    )
    out = {(r["prompt_id"], r["model_id"]): r for r in prompt_stats(traces, verdicts).iter_rows(named=True)}
    p = out[("p", "teacher")]
    # a3 fails one verifier -> incorrect; a4 timed out -> not counted (can't tell is never wrong)
    assert (p["n_traces"], p["n_verified"], p["n_correct"]) == (4, 3, 2)
    assert p["pass_rate"] == pytest.approx(2 / 3)
    assert p["difficulty_band"] == "medium"
    assert p["score_cv"] == pytest.approx(((1 / 3 * (1 - 5 / 6) ** 2 * 2 + (0.5 - 5 / 6) ** 2 / 3) ** 0.5) / (5 / 6))
    assert out[("q", "teacher")]["difficulty_band"] == "solved"
    assert out[("q", "teacher")]["score_cv"] == 0.0
    assert out[("r", "student")]["difficulty_band"] == "unknown"
    assert out[("r", "student")]["pass_rate"] is None


@pytest.mark.parametrize(
    ("n_correct", "n", "band"),
    [(0, 10, "unsolved"), (1, 10, "hard"), (2, 10, "medium"), (8, 10, "medium"), (9, 10, "easy"), (10, 10, "solved")],
)
def test_difficulty_bands(n_correct, n, band):
    ids = [f"t{i}" for i in range(n)]
    traces = pl.DataFrame({"trace_id": ids, "prompt_id": ["p"] * n, "model_id": ["m"] * n})
    verdicts = pl.DataFrame(
        {"trace_id": ids, "verifier": ["v"] * n, "verdict_status": ["correct"] * n_correct + ["incorrect"] * (n - n_correct), "score": [1.0] * n}
    )
    assert prompt_stats(traces, verdicts, PromptStatsConfig())["difficulty_band"][0] == band
