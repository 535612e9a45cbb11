"""A real planted effect on the toy world: the student trained on traces whose final answers were
corrupted must come out `worse` than the one trained on the same traces with correct answers, with
an interval excluding 0; the same statistics applied to the correct arm against itself under another
training seed must not claim a difference that is not there (checked on synthetic outcomes in
test_stats.py; here the planted effect is trained, not simulated)."""

import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
N_TRAIN, STEPS, N_EVAL = 400, 250, 100  # measured: 23 min in all on the shared 2-core machine at load 20-30


def _corrupt(answer: str) -> str:
    """Shift the boxed number by 7: the reasoning stays right, the final answer is wrong."""
    return re.sub(r"-?\d+", lambda m: str(int(m.group()) + 7), answer, count=1)


@pytest.mark.slow
def test_student_trained_on_corrupted_answers_is_worse(tmp_path):
    from tasks.evaluate.backend import StageGenerator
    from tasks.evaluate.core import evaluate_problems
    from tasks.evaluate.problems import load_eval_set
    from tasks.experiment.stats import WORSE, StatsConfig, compare_arms
    from tasks.train.recipe import load_train_recipe
    from tasks.train.sft import train_sft
    from toyworld.toy_sft_check import teacher_rows

    spec = load_train_recipe("toy_ablation")
    cfg = replace(spec.train_config(), max_steps=STEPS, device="cpu", max_train_minutes=None)
    ecfg = replace(spec.eval_config(), k=1, n_samples=None, device="cpu")
    rows = teacher_rows(REPO / "toyworld" / "data" / "train.jsonl", N_TRAIN)
    corrupted = rows.with_columns(pl.col("answer").map_elements(_corrupt, return_dtype=pl.String))
    assert (corrupted["answer"] != rows["answer"]).all()
    problems = load_eval_set(spec.eval_set_path()).filter(pl.col("domain") == "math").head(N_EVAL)
    outcomes = []
    for arm, data in (("random", rows), ("corrupted_answers", corrupted)):
        result = train_sft(data, spec.resolved_base_model(), cfg, tmp_path / arm)
        assert result.n_steps == STEPS and not result.is_truncated
        samples = evaluate_problems(problems, StageGenerator(result.checkpoint_path, device="cpu"), ecfg)
        greedy = samples.filter(pl.col("mode") == "greedy").select(
            "problem_id", (pl.col("verdict_status") == "correct").cast(pl.Int64).alias("correct"))
        outcomes.append(greedy.with_columns(arm=pl.lit(arm), seed=pl.lit(0)))
    out = compare_arms(pl.concat(outcomes), cfg=StatsConfig(n_bootstrap=2000))
    print(out)  # shown with -s: the measured pass@1 and difference
    row = out.filter(pl.col("arm") == "corrupted_answers").row(0, named=True)
    assert row["verdict"] == WORSE and row["diff_high"] < 0, out
