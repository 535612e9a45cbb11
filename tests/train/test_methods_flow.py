"""Training methods through the finetune flow (Prefect ephemeral API) and the CLI, on a tiny student."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.train.config import TrainError
from tasks.train.methods import plan_stages, split_steps
from warehouse.runs import utcnow

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = [(f"p{a}{b}", f"Compute {a} + {b}.", a + b) for a in range(3) for b in range(3)]


def _publish(wh, name, policy, traces, *, version=1, model_id="teacher-a"):
    """Publish a dataset version: `traces` = [(trace_id, prompt_id, stage, answer, temperature)]."""
    now = utcnow()
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "toy", "domain": "math", "problem_text": text, "reference_answer": str(ans),
         "split": "train", "ingested_at": now, "run_id": "ingest-1"} for pid, text, ans in PROBLEMS]), key=["prompt_id"])
    text = {pid: t for pid, t, _ in PROBLEMS}
    wh.load("raw.raw_traces", pl.DataFrame([
        {"trace_id": tid, "prompt_id": pid, "model_id": model_id, "origin": "imported", "sample_index": 0,
         "completion_text": f"<think>\n{text[pid][8:-1]}={ans}.\n</think>\n\n\\boxed{{{ans}}}", "reasoning_text": f"{text[pid][8:-1]}={ans}.",
         "answer_text": f"\\boxed{{{ans}}}", "is_truncated": False, "n_completion_tokens": 20, "temperature": temp,
         "created_at": now, "run_id": "ingest-1"}
        for tid, pid, _, ans, temp in traces]), key=["trace_id"])
    wh.load("curated.cur_datasets", pl.DataFrame([{
        "dataset_name": name, "version": version, "policy": policy, "params_json": "{}", "config_fingerprint": "x",
        "n_rows": len(traces), "n_tokens": 20 * len(traces), "content_hash": f"hash-{name}-{version}",
        "status": "published", "created_at": now}]), key=["dataset_name", "version"])
    wh.load("curated.cur_dataset_rows", pl.DataFrame([
        {"dataset_name": name, "version": version, "trace_id": tid, "rank": i // 2 + 1 if policy == "redi_pairs" else i + 1, "stage": stage}
        for i, (tid, _, stage, _, _) in enumerate(traces)]), key=["dataset_name", "version", "trace_id"])


def _redi_traces():
    out = []
    for pid, _, ans in PROBLEMS[:6]:
        out += [(f"w_{pid}", pid, "positive", ans, 0.8), (f"l_{pid}", pid, "negative", ans + 1, 0.8)]
    return out


def _schedule_traces():
    low = [(f"lo_{pid}", pid, "low_temp", ans, 0.6) for pid, _, ans in PROBLEMS[:6]]
    high = [(f"hi_{pid}", pid, "high_temp", ans, 1.0) for pid, _, ans in PROBLEMS[:3]]
    return low + high


@pytest.fixture
def recipe(tmp_path, tiny_lm):
    def write(method, **sections):
        path = tmp_path / f"train_{method.replace('+', '_')}.yaml"
        path.write_text(yaml.safe_dump({
            "name": "tiny", "version": 1, "base_model": str(tiny_lm), "output_root": str(tmp_path / "ckpt"), "method": method,
            "train": {"max_steps": 4, "per_device_batch_size": 4, "learning_rate": 5e-3, "logging_steps": 1, "device": "cpu"},
            **sections,
        }))
        return str(path)
    return write


def test_plan_refuses_sft_on_negatives_in_one_line_naming_policy_and_method():
    with pytest.raises(TrainError) as err:
        plan_stages("sft", "redi_pairs", ["negative", "positive"])
    msg = str(err.value)
    assert "\n" not in msg and "'redi_pairs'" in msg and "'sft+redi'" in msg
    with pytest.raises(TrainError, match="'schedule'"):
        plan_stages("sft", "temperature_schedule", ["high_temp", "low_temp"])
    with pytest.raises(TrainError, match="policy 'redi_pairs'"):
        plan_stages("sft+redi", "provenance", ["main"])
    with pytest.raises(TrainError, match="policy 'temperature_schedule'"):
        plan_stages("schedule", "random", ["main"])
    with pytest.raises(TrainError, match="sft, sft\\+redi, sft\\+opd, schedule"):
        plan_stages("dpo", "random", ["main"])
    assert [s.name for s in plan_stages("schedule", "temperature_schedule", ["low_temp", "high_temp"])] == ["low_temp", "high_temp"]
    assert [s.name for s in plan_stages("sft+opd", "random", ["main"])] == ["sft", "opd"]


@pytest.mark.parametrize("total, counts, expected", [(100, [30, 10], [75, 25]), (3, [1, 100], [1, 2]), (4, [6, 3], [3, 1])])
def test_schedule_steps_are_proportional_and_sum_to_the_budget(total, counts, expected):
    assert split_steps(total, counts) == expected


def test_sft_on_redi_pairs_is_refused_before_anything_is_recorded(prefect_harness, wh, wh_path, recipe):
    from flows.finetune import finetune_flow

    _publish(wh, "pairs", "redi_pairs", _redi_traces())
    with pytest.raises(TrainError, match=r"method 'sft' refuses a 'redi_pairs' dataset: .*use method 'sft\+redi'"):
        finetune_flow(warehouse=str(wh_path), dataset="pairs@1", recipe=recipe("sft"))
    assert wh.scalar("select count(*) from meta.training_runs") == 0


def test_sft_then_redi_records_two_stages_and_trains_sft_on_positives_only(prefect_harness, wh, wh_path, recipe):
    from flows.finetune import finetune_flow
    from tasks.train.sft import read_sidecar

    _publish(wh, "pairs", "redi_pairs", _redi_traces())
    out = finetune_flow(warehouse=str(wh_path), dataset="pairs@1",
                        recipe=recipe("sft+redi", redi={"alpha": 0.8, "train": {"max_steps": 3, "per_device_batch_size": 2}}))
    runs = wh.query("select * from meta.training_runs order by started_at").to_dicts()
    assert [(r["method"], r["stage"], r["status"]) for r in runs] == [("sft+redi", "sft", "completed"), ("sft+redi", "redi", "completed")]
    assert runs[0]["parent_training_run_id"] is None and runs[1]["parent_training_run_id"] == runs[0]["training_run_id"]
    assert runs[1]["base_model"] == runs[0]["checkpoint_path"] and runs[1]["n_steps"] == 3
    assert out["training_run_id"] == runs[1]["training_run_id"] and out["checkpoint_path"] == runs[1]["checkpoint_path"]
    sft, redi = out["stages"]
    assert sft["n_examples"] == 6 and redi["n_examples"] == 6  # 6 positives for SFT; 6 (positive, negative) pairs for REDI
    assert read_sidecar(runs[1]["checkpoint_path"])["redi_alpha"] == 0.8
    again = finetune_flow(warehouse=str(wh_path), dataset="pairs@1",
                          recipe=recipe("sft+redi", redi={"alpha": 0.8, "train": {"max_steps": 3, "per_device_batch_size": 2}}))
    assert again["skipped"] and wh.scalar("select count(*) from meta.training_runs") == 2


def test_schedule_trains_low_then_high_temperature_in_order(prefect_harness, wh, wh_path, recipe):
    from flows.finetune import finetune_flow
    from tasks.train.sft import read_sidecar

    _publish(wh, "sched", "temperature_schedule", _schedule_traces())
    out = finetune_flow(warehouse=str(wh_path), dataset="sched@1", recipe=recipe("schedule"))
    runs = wh.query("select * from meta.training_runs order by started_at").to_dicts()
    assert [r["stage"] for r in runs] == ["low_temp", "high_temp"] and {r["method"] for r in runs} == {"schedule"}
    assert runs[1]["parent_training_run_id"] == runs[0]["training_run_id"] and runs[1]["base_model"] == runs[0]["checkpoint_path"]
    low, high = out["stages"]
    assert (low["n_examples"], high["n_examples"]) == (6, 3) and (low["n_steps"], high["n_steps"]) == (3, 1)  # 4 steps split 6:3
    assert read_sidecar(runs[0]["checkpoint_path"])["stage"] == "low_temp"


@pytest.mark.slow
def test_sft_then_opd_samples_scores_under_the_sft_teacher_and_trains(prefect_harness, wh, wh_path, recipe, tiny_lm):
    from flows.divergence import resolve_model_id
    from flows.finetune import finetune_flow
    from tasks.train.sft import read_sidecar

    teacher_id = resolve_model_id(str(tiny_lm))
    _publish(wh, "single", "random", [(f"t_{pid}", pid, "main", ans, 0.8) for pid, _, ans in PROBLEMS], model_id=teacher_id)
    path = recipe("sft+opd", opd={"teacher": str(tiny_lm), "clip": 2.0, "max_tokens": 8,
                                  "rollouts": {"n": 1, "temperature": 1.0, "max_tokens": 12, "limit": 4},
                                  "train": {"max_steps": 2, "per_device_batch_size": 2}})
    out = finetune_flow(warehouse=str(wh_path), dataset="single@1", recipe=path)
    runs = wh.query("select * from meta.training_runs order by started_at").to_dicts()
    assert [(r["method"], r["stage"]) for r in runs] == [("sft+opd", "sft"), ("sft+opd", "opd")]
    assert runs[1]["parent_training_run_id"] == runs[0]["training_run_id"] and runs[1]["n_steps"] == 2
    sidecar = read_sidecar(out["checkpoint_path"])
    assert sidecar["opd_teacher_model_id"] == teacher_id and sidecar["n_rollouts"] == 4 and sidecar["opd_clip"] == 2.0
    student = sidecar["student_model_id"]
    assert wh.scalar("select count(*) from staging.stg_traces where model_id = ?", [student]) == 4
    assert wh.scalar("select count(distinct trace_id) from raw.raw_token_logprobs where model_id = ?", [teacher_id]) >= 4
    # teacher consistency: a teacher that did not write the SFT data is refused before anything is scored
    other = recipe("sft+opd", opd={"teacher": str(tiny_lm) + "-other", "rollouts": {"limit": 2, "max_tokens": 8},
                                   "train": {"max_steps": 1}})
    with pytest.raises(Exception, match="teacher consistency|refused"):
        finetune_flow(warehouse=str(wh_path), dataset="single@1", recipe=other)


@pytest.mark.slow
def test_cli_refuses_sft_on_a_redi_pairs_dataset_in_one_line(wh, wh_path, recipe, tmp_path):
    _publish(wh, "pairs", "redi_pairs", _redi_traces())
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "-w", str(wh_path), "run", "finetune", "--set", "dataset=pairs@1",
         "--set", "method=sft", "--set", f"recipe={recipe('sft')}"],
        check=False, capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # no Prefect traceback: one line
    assert lines[0].startswith("error: method 'sft' refuses a 'redi_pairs' dataset") and "use method 'sft+redi'" in lines[0]
    assert json.dumps(proc.stdout).count("completed") == 0


@pytest.mark.parametrize("deployment, method", [("finetune-redi", "sft+redi"), ("finetune-schedule", "schedule"), ("finetune-opd", "sft+opd")])
def test_each_method_has_a_deployment_whose_parameters_the_flow_accepts(deployment, method):
    from flows.finetune import finetune_flow
    from tasks.train.recipe import load_train_recipe

    spec = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    dep = next(d for d in spec["deployments"] if d["name"] == deployment)
    assert dep["entrypoint"] == "flows/finetune.py:finetune_flow"
    params = {**dep["parameters"], "dataset": "x@1"}
    assert finetune_flow.validate_parameters(params)["method"] == method
    recipe = load_train_recipe(REPO / dep["parameters"]["recipe"])
    assert recipe.method == dep["parameters"]["method"] == method
