"""The training-methods ablation's pure core: one draw of positives feeds every arm; equal steps enforced."""

import polars as pl
import pytest

from tasks.experiment.ablation import ExperimentError
from tasks.experiment.methods import (
    check_same_positives,
    check_stage_steps,
    method_datasets,
    parse_method_arms,
    step_plan,
)

A, B = "teacher-a@x", "teacher-b@y"


def _candidates(n_prompts=12):
    rows = []
    for p in range(n_prompts):
        # teacher-a: correct at 0.6 (even prompts) or 1.0 (odd), plus one more correct at the other temperature;
        # an incorrect teacher-a trace on prompts divisible by 3, an incorrect teacher-b trace on every prompt but p11
        rows += [
            {"trace_id": f"a{p}lo", "prompt_id": f"p{p}", "model_id": A, "temperature": 0.6, "verdict_status": "correct",
             "n_completion_tokens": 10},
            {"trace_id": f"a{p}hi", "prompt_id": f"p{p}", "model_id": A, "temperature": 1.0,
             "verdict_status": "correct" if p % 3 else "incorrect", "n_completion_tokens": 20},
        ]
        if p != 11:
            rows.append({"trace_id": f"b{p}", "prompt_id": f"p{p}", "model_id": B, "temperature": 1.0, "verdict_status": "incorrect",
                         "n_completion_tokens": 30})
    rows.append({"trace_id": "r0", "prompt_id": "p11", "model_id": "sft-tr_abc@1", "temperature": 1.0, "verdict_status": "incorrect",
                 "n_completion_tokens": 5})
    rows.append({"trace_id": "dup", "prompt_id": "p11", "model_id": B, "temperature": 1.0, "verdict_status": "incorrect",
                 "n_completion_tokens": 5, "is_representative": False})
    return pl.DataFrame(rows).with_columns(pl.col("is_representative").fill_null(True))


def test_every_arm_trains_on_the_same_positives_and_redi_pairs_share_the_prompt():
    cands = _candidates()
    ds, report = method_datasets(cands, teacher_model_id=A, budget=8, seed=0)
    check_same_positives(ds)
    # p11 has no negative (its teacher-b negative is a duplicate, its other one a student rollout): never drawn
    assert report["n_prompts_with_both"] == 11 and report["n_student_rollouts_excluded"] == 1
    by_id = {r["trace_id"]: r for r in cands.to_dicts()}
    sft = ds["sft"]
    assert sft.height == 8 and set(sft["stage"]) == {"main"} and sft["rank"].to_list() == list(range(1, 9))
    assert all(by_id[t]["model_id"] == A and by_id[t]["verdict_status"] == "correct" for t in sft["trace_id"])
    assert len({by_id[t]["prompt_id"] for t in sft["trace_id"]}) == 8
    redi = ds["redi"]
    for rank, group in redi.group_by("rank"):
        pos = group.filter(pl.col("stage") == "positive")["trace_id"][0]
        neg = group.filter(pl.col("stage") == "negative")["trace_id"][0]
        assert by_id[pos]["prompt_id"] == by_id[neg]["prompt_id"] and by_id[neg]["verdict_status"] == "incorrect"
        # the teacher's own negative is preferred where it has one
        if by_id[pos]["prompt_id"] in {"p0", "p3", "p6", "p9"}:
            assert by_id[neg]["model_id"] == A
        else:
            assert by_id[neg]["model_id"] == B
    assert report["n_negatives_same_teacher"] == sum(by_id[t]["model_id"] == A for t in redi.filter(pl.col("stage") == "negative")["trace_id"])


def test_schedule_orders_the_same_rows_low_then_high_temperature():
    cands = _candidates()
    ds, report = method_datasets(cands, teacher_model_id=A, budget=10, seed=3)
    sched = ds["schedule"].sort("rank")
    temps = {r["trace_id"]: r["temperature"] for r in cands.to_dicts()}
    stages = sched["stage"].to_list()
    assert stages == sorted(stages, key=lambda s: s != "low_temp")  # every low_temp row before every high_temp row
    assert all((temps[t] <= 0.8) == (s == "low_temp") for t, s in zip(sched["trace_id"], stages))
    assert report["n_low_temp"] + report["n_high_temp"] == 10 and report["n_low_temp"] == stages.count("low_temp")


def test_the_draw_depends_on_the_seed_not_on_a_score():
    a, _ = method_datasets(_candidates(), teacher_model_id=A, budget=9, seed=0)
    b, _ = method_datasets(_candidates(), teacher_model_id=A, budget=9, seed=0)
    c, _ = method_datasets(_candidates(), teacher_model_id=A, budget=9, seed=2)
    assert a["sft"].equals(b["sft"]) and not a["sft"].equals(c["sft"])


def test_refusals_name_the_reason():
    with pytest.raises(ExperimentError, match="only 11 prompts have both"):
        method_datasets(_candidates(), teacher_model_id=A, budget=12, seed=0)
    with pytest.raises(ExperimentError, match="has no eligible traces"):
        method_datasets(_candidates(), teacher_model_id="teacher-c@z", budget=2, seed=0)
    one_temp = _candidates().with_columns(temperature=pl.lit(0.8))
    with pytest.raises(ExperimentError, match="two temperatures"):
        method_datasets(one_temp, teacher_model_id=A, budget=4, seed=0)
    with pytest.raises(ExperimentError, match="unknown method arm"):
        parse_method_arms(["sft", "dpo"])


def test_unequal_positives_are_refused():
    ds, _ = method_datasets(_candidates(), teacher_model_id=A, budget=6, seed=0)
    ds["schedule"] = ds["schedule"].head(5)
    with pytest.raises(ExperimentError, match="SFT rows differ"):
        check_same_positives(ds)


@pytest.mark.parametrize("arm, expected", [
    ("sft", {"sft": 300}), ("sft+redi", {"sft": 240, "redi": 60}), ("sft+opd", {"sft": 240, "opd": 60}),
    ("schedule", {"low_temp+high_temp": 300}),
])
def test_every_arm_plans_the_same_total(arm, expected):
    plan = step_plan(arm, 300, 60)
    assert plan == expected and sum(plan.values()) == 300


def test_step_plan_refuses_a_second_stage_that_leaves_no_sft():
    with pytest.raises(ExperimentError, match="second-stage steps"):
        step_plan("sft+opd", 100, 100)


def _arm(arm, steps, **stage):
    return {"arm": arm, "seed": 0, "stages": [{"stage": s, "n_steps": n, "max_steps": n, "is_truncated": False, **stage}
                                                for s, n in steps.items()]}


def test_stage_steps_checks_refuse_unequal_totals_short_stages_and_truncation():
    check_stage_steps([_arm("sft", {"sft": 300}), _arm("sft+redi", {"sft": 240, "redi": 60}),
                       _arm("schedule", {"low_temp": 140, "high_temp": 160})])
    with pytest.raises(ExperimentError, match="different total numbers"):
        check_stage_steps([_arm("sft", {"sft": 300}), _arm("sft+redi", {"sft": 240, "redi": 59})])
    short = _arm("sft+opd", {"sft": 240, "opd": 60})
    short["stages"][1].update(n_steps=50)
    with pytest.raises(ExperimentError, match="made 50 of 60 planned"):
        check_stage_steps([short])
    with pytest.raises(ExperimentError, match="truncated"):
        check_stage_steps([_arm("sft", {"sft": 300}, is_truncated=True, truncation_reason="time cap")])
