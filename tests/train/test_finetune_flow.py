"""finetune → evaluate through Prefect (ephemeral API), on a warehouse holding one published dataset version."""

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.train.config import TrainError
from warehouse.runs import utcnow

PROBLEMS = [(f"p{a}{b}", f"Compute {a} + {b}.", a + b) for a in range(3) for b in range(3)]


def _publish_toy_dataset(wh, name="toy-prov", version=1, status="published", drop_trace=False):
    now = utcnow()
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "toy", "domain": "math", "problem_text": text, "reference_answer": str(ans),
         "split": "train", "ingested_at": now, "run_id": "ingest-1"} for pid, text, ans in PROBLEMS]), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame([
        {"trace_id": f"t_{pid}", "prompt_id": pid, "model_id": "teacher-a", "origin": "imported", "sample_index": 0,
         "completion_text": f"<think>\n{text[8:-1]}={ans}.\n</think>\n\n\\boxed{{{ans}}}", "reasoning_text": f"{text[8:-1]}={ans}.",
         "answer_text": f"\\boxed{{{ans}}}", "is_truncated": False, "n_completion_tokens": 20, "created_at": now, "run_id": "ingest-1"}
        for pid, text, ans in PROBLEMS]), key=["trace_id"])
    trace_ids = [f"t_{pid}" for pid, _, _ in PROBLEMS] + (["t_gone"] if drop_trace else [])
    wh.load("curated.cur_datasets", pl.DataFrame([{
        "dataset_name": name, "version": version, "policy": "provenance", "params_json": "{}", "config_fingerprint": "x",
        "n_rows": len(trace_ids), "n_tokens": 20 * len(trace_ids), "content_hash": f"hash-{version}-{len(trace_ids)}",
        "status": status, "created_at": now}]), key=["dataset_name", "version"])
    wh.load("curated.cur_dataset_rows", pl.DataFrame([
        {"dataset_name": name, "version": version, "trace_id": t, "rank": i, "stage": "main"} for i, t in enumerate(trace_ids)]),
        key=["dataset_name", "version", "trace_id"])


@pytest.fixture
def recipe(tmp_path, tiny_lm):
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"id": f"e{i}", "domain": "math", "problem": f"Compute {i} + 1.", "answer": str(i + 1)}) + "\n" for i in range(3)))
    path = tmp_path / "train_tiny.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "version": 1, "base_model": str(tiny_lm), "output_root": str(tmp_path / "ckpt"),
        "train": {"max_steps": 4, "per_device_batch_size": 4, "learning_rate": 5e-3, "logging_steps": 2, "device": "cpu"},
        "evaluate": {"eval_set": str(eval_set), "k": 2, "max_new_tokens": 8, "device": "cpu"},
        "on_publish": {"finetune": True, "evaluate": True, "finetune_deployment": "finetune/not-deployed"},
    }))
    return path


def test_finetune_records_training_run_and_is_idempotent(prefect_harness, wh, wh_path, recipe):
    from flows.finetune import finetune_flow

    _publish_toy_dataset(wh, drop_trace=True)
    out = finetune_flow(warehouse=str(wh_path), dataset="toy-prov@1", recipe=str(recipe))
    assert out["n_steps"] == 4 and out["n_out"] == 9 and out["n_rejected"] == 1 and not out["skipped"]
    run = wh.query("select * from meta.training_runs").row(0, named=True)
    assert run["status"] == "completed" and run["dataset_version"] == 1 and run["checkpoint_path"] == out["checkpoint_path"]
    assert run["n_steps"] == 4 and run["final_loss"] > 0 and run["n_train_tokens"] > 0 and run["recipe_fingerprint"].startswith("sft-full-")
    assert wh.scalar("select reason_code from raw.raw_rejections where stage = 'finetune'") == "trace_missing"
    sidecar = json.loads(Path(out["checkpoint_path"] + ".json").read_text())
    assert sidecar["content_hash"] == "hash-1-10" and sidecar["dataset"] == "toy-prov@1" and sidecar["training_run_id"] == run["training_run_id"]

    again = finetune_flow(warehouse=str(wh_path), dataset="toy-prov@latest", recipe=str(recipe))
    assert again["skipped"] and again["training_run_id"] == run["training_run_id"]
    assert wh.scalar("select count(*) from meta.training_runs") == 1


def test_unpublished_dataset_and_failed_training_are_visible(prefect_harness, wh, wh_path, recipe, tmp_path):
    from flows.finetune import finetune_flow

    _publish_toy_dataset(wh, status="draft")
    with pytest.raises(TrainError, match=r"no published version .*1 \(draft\)"):
        finetune_flow(warehouse=str(wh_path), dataset="toy-prov@1", recipe=str(recipe))
    _publish_toy_dataset(wh, version=2)
    with pytest.raises(TrainError, match="cannot load base model"):
        finetune_flow(warehouse=str(wh_path), dataset="toy-prov@2", recipe=str(recipe), base_model=str(tmp_path / "missing"))
    assert wh.scalar("select status from meta.training_runs") == "failed"
    assert wh.scalar("select status from meta.runs where stage = 'finetune'") == "failed"


@pytest.mark.slow
def test_on_publish_runs_finetune_then_evaluates_base_and_checkpoint(prefect_harness, wh, wh_path, recipe, tiny_lm):
    from flows.finetune import on_publish

    _publish_toy_dataset(wh)
    out = on_publish("toy-prov", 1, recipe=str(recipe), warehouse=str(wh_path))
    assert out["finetune"]["via"] == "subflow" and out["evaluate"]["via"] == "subflow"
    results = wh.query("select model_id, checkpoint_path, training_run_id, domain, n_problems, k from meta.eval_results order by model_id, domain")
    assert sorted(set(results["model_id"])) == sorted([str(tiny_lm), out["checkpoint_path"]])
    assert set(results["domain"]) == {"all", "math"} and set(results["n_problems"]) == {3} and set(results["k"]) == {2}
    assert results.filter(pl.col("model_id") == out["checkpoint_path"])["training_run_id"].to_list() == [out["training_run_id"]] * 2
    assert wh.scalar("select count(*) from meta.eval_samples") == 2 * 3 * (1 + 2)
    cmp = out["evaluate"]["comparison"]
    assert [c["model_id"] for c in cmp] == [str(tiny_lm), out["checkpoint_path"]] and cmp[0]["delta_pass_at_1"] == 0.0


@pytest.mark.slow
def test_on_publish_through_a_deployment_without_worker_fails_clearly(prefect_harness, wh, wh_path, recipe):
    from flows.finetune import finetune_flow, on_publish

    _publish_toy_dataset(wh)
    data = yaml.safe_load(recipe.read_text())
    data["on_publish"].update({"finetune_deployment": "finetune/gpu-test", "deployment_timeout_s": 3})
    recipe.write_text(yaml.safe_dump(data))
    finetune_flow.to_deployment(name="gpu-test").apply()
    with pytest.raises(TrainError, match=r"deployment finetune/gpu-test run .* after 3s .*no worker"):
        on_publish("toy-prov", 1, recipe=str(recipe), warehouse=str(wh_path))
    assert wh.scalar("select count(*) from meta.training_runs") == 0
