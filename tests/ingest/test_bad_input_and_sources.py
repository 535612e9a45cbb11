"""Bad input never costs good rows; every rejection is one line naming file, row and field.
Inputs beyond one file: Parquet shard folders (a downloaded Hub snapshot) and hf:// ids."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from flows.ingest import run_ingest
from tasks.ingest.readers import IngestError, iter_records, parse_hub_spec

GOOD = [{"problem": "Compute 1 + 1.", "answer": "2"}, {"problem": "Compute 2 + 2.", "answer": "4"}]


def _lines(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def _enc(row) -> bytes:
    return json.dumps(row).encode()


@pytest.mark.parametrize("depth", [990, 100_000, 80])
def test_deep_nesting_is_rejected_and_the_file_goes_on(wh, tmp_path, depth):
    deep = b'{"problem": ' + b"[" * depth + b"]" * depth + b', "answer": "1"}'
    path = tmp_path / "deep.jsonl"
    _lines(path, [_enc(GOOD[0]), deep, _enc(GOOD[1])])
    stats = run_ingest(path, warehouse=wh.path)
    assert (stats["read"], stats["accepted"], stats["reasons"]) == (3, 2, {"too_deep": 1})
    assert stats["examples"][0] == f"{path}:2: too_deep: field 'problem' nests more than 64 levels deep"
    traces = tmp_path / "deep_traces.jsonl"
    deep_trace = b'{"problem": "Compute 3 + 3.", "completion": "6", "extra": ' + b"[" * depth + b"]" * depth + b"}"
    _lines(traces, [deep_trace, _enc({"problem": "Compute 4 + 4.", "completion": "8"})])
    stats = run_ingest(traces, kind="traces", model="m", warehouse=wh.path)
    assert (stats["accepted"], stats["reasons"]) == (1, {"too_deep": 1})
    assert stats["examples"][0] == f"{traces}:1: too_deep: field 'extra' nests more than 64 levels deep"


def test_bom_csv_and_bom_jsonl_ingest(wh, tmp_path):
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfproblem,answer\r\nCompute 5 + 5.,10\r\nCompute 6 + 6.,12\r\n")
    stats = run_ingest(csv_path, warehouse=wh.path)
    assert (stats["accepted"], stats["rejected"]) == (2, 0)
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + _enc({"problem": "Compute 7 + 7.", "answer": "14"}) + b"\n")
    assert run_ingest(jsonl, warehouse=wh.path)["accepted"] == 1
    assert wh.scalar("select count(*) from raw.raw_prompts") == 3


@pytest.mark.parametrize(
    ("row", "kind", "field"),
    [
        ({"problem": 12345, "answer": "1"}, "prompts", "problem"),
        ({"problem": {"text": "Compute 1 + 1."}}, "prompts", "problem"),
        ({"problem": ["Compute", "1 + 1"]}, "prompts", "problem"),
        ({"problem": "Compute 1 + 1.", "completion": 2}, "traces", "completion"),
        ({"problem": "Compute 1 + 1.", "completion": "2", "finish_reason": 1}, "traces", "finish_reason"),
        ({"problem": "Compute 1 + 1.", "reasoning": ["1+1"], "model_answer": "2"}, "traces", "reasoning"),
        ({"messages": [{"role": "user", "content": {"q": 1}}, {"role": "assistant", "content": "2"}]}, "traces", "messages"),
        ({"problem": "Compute 1 + 1.", "generations": [5]}, "traces", "generations[0]"),
        ({"problem": "Compute 1 + 1.", "completion": "2", "correct": "maybe"}, "traces", "correct"),
    ],
)
def test_text_fields_that_are_not_text_are_invalid_field(wh, tmp_path, row, kind, field):
    path = tmp_path / "typed.jsonl"
    _lines(path, [_enc(row), _enc(GOOD[1] | {"completion": "4"})])
    stats = run_ingest(path, kind=kind, model="m" if kind == "traces" else None, warehouse=wh.path,
                       verdict_fields=["correct"] if field == "correct" else ())
    assert (stats["accepted"], stats["reasons"]) == (1, {"invalid_field": 1})
    line = stats["examples"][0]
    assert line.startswith(f"{path}:1: invalid_field: field '{field}") and "\n" not in line
    assert wh.scalar("select count(*) from raw.raw_rejections where source_ref = ?", [f"{path}:1"]) == 1


def test_numbers_stay_welcome_as_reference_answers(wh, tmp_path):
    path = tmp_path / "n.jsonl"
    _lines(path, [_enc({"problem": "Compute 2 * 3.", "answer": 6})])
    run_ingest(path, warehouse=wh.path)
    assert wh.scalar("select reference_answer from raw.raw_prompts") == "6"


def test_parquet_shard_folder_keeps_split_from_shard_names(wh, tmp_path):
    snapshot = tmp_path / "OpenR1-Math-220k"
    (snapshot / "data").mkdir(parents=True)
    (snapshot / "README.md").write_text("dataset card")
    (snapshot / "dataset_infos.json").write_text('{"default": {"features": {}}}')  # metadata, not data
    rows = [{"problem": f"Compute {i} * 2.", "answer": str(2 * i), "generations": [f"<think>{i}*2</think>\\boxed{{{2 * i}}}"],
             "correctness_math_verify": [True]} for i in range(5)]
    pl.DataFrame(rows[:2]).write_parquet(snapshot / "data" / "train-00000-of-00002.parquet")
    pl.DataFrame(rows[2:4]).write_parquet(snapshot / "data" / "train-00001-of-00002.parquet")
    pl.DataFrame(rows[4:]).write_parquet(snapshot / "data" / "test-00000-of-00001.parquet")
    stats = run_ingest(snapshot, kind="traces", model="deepseek-r1", warehouse=wh.path)
    assert (stats["format"], stats["read"], stats["accepted"], stats["new_verdicts"]) == ("shards", 5, 5, 5)
    splits = wh.query("select split, count(*) as n from raw.raw_prompts group by split order by split").rows()
    assert splits == [("test", 1), ("train", 4)]
    assert stats["path"] == str(snapshot) and wh.scalar("select min(source) from raw.raw_prompts") == "OpenR1-Math-220k"


def test_hub_ids_parse_and_fail_offline_in_one_line(monkeypatch):
    assert parse_hub_spec("hf://open-r1/OpenR1-Math-220k") == ("open-r1/OpenR1-Math-220k", None, None)
    assert parse_hub_spec("hf://open-thoughts/OpenThoughts3-1.2M@train") == ("open-thoughts/OpenThoughts3-1.2M", None, "train")
    with pytest.raises(IngestError, match="expected hf://org/name"):
        parse_hub_spec("hf://no-org")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(IngestError, match="cannot load from the Hugging Face Hub") as err:
        list(iter_records("hf://open-r1/OpenR1-Math-220k:default@train"))
    assert "\n" not in str(err.value) and "save_to_disk" in str(err.value)


def test_hub_reads_through_load_dataset(wh, monkeypatch):
    """The hf:// path streams rows through datasets.load_dataset (stood in here: no network)."""
    import datasets

    calls = []

    def fake_load(name, config=None, split=None, streaming=False):
        calls.append((name, config, split, streaming))
        return datasets.Dataset.from_list([
            {"problem": "Compute 1 + 4.", "answer": "5", "generations": ["<think>1+4=5</think>\\boxed{5}", "<think>?</think>\\boxed{4}"],
             "correctness_math_verify": [True, False]},
        ])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    stats = run_ingest("hf://open-r1/OpenR1-Math-220k@train", kind="traces", model="deepseek-r1", warehouse=wh.path)
    assert calls == [("open-r1/OpenR1-Math-220k", None, "train", True)]
    assert (stats["read"], stats["new_traces"], stats["new_verdicts"]) == (1, 2, 2)
    assert wh.scalar("select min(source) from raw.raw_prompts") == "OpenR1-Math-220k"
    assert wh.scalar("select min(source_ref) from raw.raw_traces") == "hf://open-r1/OpenR1-Math-220k@train:1#generation[0]"


def test_cli_prints_each_rejection_as_one_escaped_line(tmp_path, wh_path):
    path = tmp_path / "t.jsonl"
    _lines(path, [
        _enc({"conversations": [{"from": "human", "value": "Compute 1 + 1."},
                                {"from": "gpt", "value": "<|begin_of_thought|>1+1=2<|end_of_thought|><|begin_of_solution|>2<|end_of_solution|>"}]}),
        _enc({"problem": "[red]x[/] \x1b[31m", "completion": 3}),
    ])
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--warehouse", str(wh_path), "ingest", "traces", str(path), "--model", "m"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read 2, accepted 1" in proc.stdout and "invalid_field=1" in proc.stdout
    assert f"rejected {path}:2: invalid_field: field 'completion' (column 'completion') must be text, got a number" in proc.stdout
    assert "\x1b" not in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--warehouse", str(wh_path), "ingest", "traces", str(path), "--model", "m",
         "--format", "xml"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode != 0 and "--format 'xml'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
