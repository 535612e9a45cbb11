"""The training-methods ablation end to end on a tiny warehouse: four method arms, equal total steps, stats vs sft."""

import json

import polars as pl
import pytest
import yaml

from warehouse.runs import utcnow


def _seed(wh, teacher_id, n_prompts=8):
    now = utcnow()
    prompts, traces, verdicts = [], [], []
    for p in range(n_prompts):
        pid, ans = f"p{p}", p + 2
        prompts.append({"prompt_id": pid, "source": "t", "domain": "math", "problem_text": f"Compute {p} + 2.", "reference_answer": str(ans),
                        "split": "train", "ingested_at": now, "run_id": "seed"})
        for k, (temp, good) in enumerate([(0.6, True), (1.0, True), (1.0, False)]):
            tid, a = f"t{p}_{k}", ans if good else ans + 1
            traces.append({"trace_id": tid, "prompt_id": pid, "model_id": teacher_id, "origin": "generated", "sample_index": k,
                           "completion_text": f"<think>\n{p}+2={a}.\n</think>\n\n\\boxed{{{a}}}", "reasoning_text": f"{p}+2={a}.",
                           "answer_text": f"\\boxed{{{a}}}", "n_completion_tokens": 20, "is_truncated": False, "temperature": temp,
                           "created_at": now, "run_id": "seed"})
            verdicts.append({"trace_id": tid, "prompt_id": pid, "verifier": "math_verify", "verifier_version": "v", "input_hash": tid,
                             "verdict_status": "correct" if good else "incorrect", "verdict_reason": "x", "score": float(good),
                             "verified_at": now, "run_id": "seed"})
    wh.load("raw.raw_prompts", pl.DataFrame(prompts), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame(traces), key=["trace_id"])
    wh.load("raw.raw_verifications", pl.DataFrame(verdicts))


@pytest.mark.slow
def test_compare_methods_trains_every_method_at_equal_total_steps_and_compares_against_sft(prefect_harness, wh, wh_path, tiny_lm,
                                                                                         tmp_path):
    from flows.divergence import resolve_model_id
    from flows.experiment_methods import compare_methods

    _seed(wh, resolve_model_id(str(tiny_lm)))
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"id": f"e{i}", "problem": f"Compute {i} + 2.", "answer": str(i + 2)}) + "\n" for i in range(4)))
    recipe = tmp_path / "train_methods_tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny-methods", "version": 1, "base_model": str(tiny_lm), "output_root": str(tmp_path / "ckpt"),
        "train": {"max_steps": 99, "per_device_batch_size": 2, "learning_rate": 5e-3, "device": "cpu"},
        "redi": {"alpha": 0.8, "train": {"learning_rate": 1e-4}},
        "opd": {"teacher": str(tiny_lm), "clip": 2.0, "max_tokens": 8,
                "rollouts": {"n": 1, "temperature": 1.0, "max_tokens": 10, "limit": 4, "batch_size": 4}},
        "evaluate": {"eval_set": str(eval_set), "k": 1, "max_new_tokens": 8, "device": "cpu"},
    }))
    out = compare_methods(wh, budget=6, seeds=[0], recipe=str(recipe), total_steps=5, second_stage_steps=2,
                          output_dir=str(tmp_path / "exp"), n_bootstrap=200)
    table = wh.query("select arm, method, policy, n_rows, n_steps, stage_steps, is_training_truncated, n_problems "
                     "from meta.experiment_results where experiment_id = ? order by arm", [out["experiment_id"]])
    assert table["arm"].to_list() == ["schedule", "sft", "sft+opd", "sft+redi"]
    assert table["method"].to_list() == table["arm"].to_list()
    assert set(table["n_rows"]) == {6} and set(table["n_steps"]) == {5} and not table["is_training_truncated"].any()
    steps = {r["arm"]: json.loads(r["stage_steps"]) for r in table.to_dicts()}
    assert steps["sft"] == {"sft": 5} and steps["sft+redi"] == {"sft": 3, "redi": 2} and steps["sft+opd"] == {"sft": 3, "opd": 2}
    assert set(steps["schedule"]) == {"low_temp", "high_temp"} and sum(steps["schedule"].values()) == 5
    # every stage is a training run with its method, stage and parent
    runs = wh.query("select method, stage, parent_training_run_id, n_steps, max_steps from meta.training_runs where status = 'completed'")
    assert set(zip(runs["method"], runs["stage"])) == {("sft", "sft"), ("sft+redi", "sft"), ("sft+redi", "redi"), ("sft+opd", "sft"),
                                                       ("sft+opd", "opd"), ("schedule", "low_temp"), ("schedule", "high_temp")}
    assert (runs["n_steps"] == runs["max_steps"]).all()
    stats = wh.query("select arm, reference_arm, verdict, pass_at_1_low, pass_at_1, pass_at_1_high from meta.experiment_arm_stats "
                     "where experiment_id = ? order by arm", [out["experiment_id"]])
    assert set(stats["reference_arm"]) == {"sft"} and stats.filter(pl.col("arm") == "sft")["verdict"][0] is None
    assert set(stats.filter(pl.col("arm") != "sft")["verdict"]) <= {"better", "worse", "no detectable difference"}
    md = (tmp_path / "exp" / "results.md").read_text()
    assert "| sft | 1 | 6 |" in md and "(reference)" in md and "| sft+opd | 1 | 6 |" in md
