"""The selection-ablation flow on a tiny warehouse: two policies, tiny student, reproducible numbers."""

import json

import polars as pl
import pytest
import yaml

from warehouse.runs import utcnow


def _traces(wh):
    now = utcnow()
    problems = [(f"p{a}{b}", f"Compute {a} + {b}.", a + b) for a in range(4) for b in range(3)]
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "toy", "domain": "math", "problem_text": text, "reference_answer": str(ans),
         "split": "train", "ingested_at": now, "run_id": "ingest-1"} for pid, text, ans in problems]), key=["prompt_id"])
    rows = []
    for pid, text, ans in problems:
        for i, reasoning in enumerate([f"{text[8:-1]}={ans}.", f"{text[8:-1]}={ans}.\nCheck: {ans}={ans}."]):
            rows.append({"trace_id": f"t_{pid}_{i}", "prompt_id": pid, "model_id": "teacher-a", "origin": "imported", "sample_index": i,
                         "completion_text": f"<think>\n{reasoning}\n</think>\n\n\\boxed{{{ans}}}", "reasoning_text": reasoning,
                         "answer_text": f"\\boxed{{{ans}}}", "is_truncated": False, "n_completion_tokens": 20 + 15 * i,
                         "created_at": now, "run_id": "ingest-1"})
    wh.load("raw.raw_traces", pl.DataFrame(rows), key=["trace_id"])


@pytest.mark.slow
def test_compare_selections_writes_table_and_reproduces(prefect_harness, wh, wh_path, tiny_lm, tmp_path):
    from flows.experiment import compare_selections

    _traces(wh)
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"id": f"e{i}", "problem": f"Compute {i} + 2.", "answer": str(i + 2)}) + "\n" for i in range(3)))
    recipe = tmp_path / "train_tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny", "version": 1, "base_model": str(tiny_lm), "output_root": str(tmp_path / "ckpt"),
        "train": {"max_steps": 3, "per_device_batch_size": 4, "learning_rate": 5e-3, "device": "cpu"},
        "evaluate": {"eval_set": str(eval_set), "k": 2, "max_new_tokens": 8, "device": "cpu"},
    }))
    out = compare_selections(wh, policies=["random", "longest"], budget=6, seed=3, recipe=str(recipe), output_dir=str(tmp_path / "exp"))
    table = wh.query("select policy, domain, n_rows, mean_trace_tokens, pass_at_1, delta_pass_at_1 from meta.experiment_results"
                     " where domain = 'all' order by policy")
    assert table["policy"].to_list() == ["base", "longest", "random"]
    assert table["n_rows"].to_list()[1:] == [6, 6]
    assert table.filter(pl.col("policy") == "longest")["mean_trace_tokens"][0] == 35.0  # longest takes the long trace per prompt
    assert (tmp_path / "exp" / "results.md").read_text().count("| random |") == 2
    assert (tmp_path / "exp" / "results.png").is_file()

    again = compare_selections(wh, policies=["longest", "random"], budget=6, seed=3, recipe=str(recipe), output_dir=str(tmp_path / "exp2"))
    assert again["experiment_id"] == out["experiment_id"] and sorted(again["summary"], key=str) == sorted(out["summary"], key=str)
    assert wh.scalar("select count(*) from meta.training_runs") == 2
