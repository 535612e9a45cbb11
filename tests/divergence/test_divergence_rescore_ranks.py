"""Traces scored before the student's token ranks were stored (migration 0160) get no rank-surprisal
ratio; `rescore_ranks` scores them again, and policy rsr refuses in one line until it has."""

from __future__ import annotations

import pytest

from flows.divergence import DivergenceConfig, resolve_model_id, run_divergence
from tasks.divergence.scoring import ScoringConfig

COMPLETIONS = ["<think>\n5*3=15.\n7+15=22.\n</think>\n\\boxed{22}", "<think>\n2+2=4.\n</think>\n\\boxed{4}"]


def test_traces_without_ranks_are_rescored_and_rsr_refuses_until_then(wh, tiny_models, ensure_token_table, seed_traces):
    from tasks.select.policies import SelectionConfig, SelectionError, select_traces

    ensure_token_table(wh)
    teacher_id = resolve_model_id(str(tiny_models["teacher"]))
    seed_traces(wh, [{"trace_id": f"t{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {i}.", "model_id": teacher_id,
                      "completion_text": c} for i, c in enumerate(COMPLETIONS)])
    cfg = DivergenceConfig(student=str(tiny_models["student"]), teacher=str(tiny_models["teacher"]), scoring=ScoringConfig(device="cpu"))
    first = run_divergence(cfg, warehouse=str(wh.path))
    student = first["student_model_id"]
    wh.execute("update raw.raw_token_logprobs set ranks = null where model_id = ?", [student])  # as scored before 0160
    scores = wh.run_file("select/student_token_scores", {"student": student}).sort("trace_id")
    assert scores["rsr"].is_null().all() and scores["student_mean_logprob"].is_not_null().all()

    candidates = scores.with_columns(prompt_id="p" + scores["trace_id"].str.slice(1), n_completion_tokens=10)
    with pytest.raises(SelectionError, match=r"policy 'rsr': none of the 2 eligible traces has a rsr score; .*rescore_ranks=true"):
        select_traces(candidates, "rsr", SelectionConfig(require_verdict=None))

    plain = run_divergence(cfg, warehouse=str(wh.path))  # without the option nothing is scored again
    assert plain["n_in"] == 0 and "rescored_for_ranks" not in plain
    again = run_divergence(cfg, warehouse=str(wh.path), rescore_missing_ranks=True)
    assert again["rescored_for_ranks"] == 2
    scores = wh.run_file("select/student_token_scores", {"student": student}).sort("trace_id")
    assert scores["rsr"].is_not_null().all() and (scores["rsr"] > 0).all()
    picked = select_traces(scores.with_columns(prompt_id="p" + scores["trace_id"].str.slice(1), n_completion_tokens=10), "rsr",
                           SelectionConfig(require_verdict=None))
    assert picked.rows.height == 2
    assert run_divergence(cfg, warehouse=str(wh.path), rescore_missing_ranks=True)["rescored_for_ranks"] == 0
