"""Ingestion: every format, every reason code, accepted + rejected = rows read, idempotent re-ingest."""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.ingest import run_ingest
from tasks.common.text import split_think
from tasks.ingest.readers import IngestError, iter_records

GOOD = [
    {"problem": "Compute 7 + 5 * 3 - 4.", "answer": "18"},
    {"problem": "Compute 2 * 3.", "answer": 6},
    {"problem": "Write a Python function f(x) that returns 3*x + 2.", "domain": "code",
     "tests": ["assert f(0) == 2", "assert f(1) == 5"]},
]


def _jsonl(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def _enc(row) -> bytes:
    return json.dumps(row).encode()


def mixed_lines() -> tuple[list[bytes], dict[str, int]]:
    lines = [_enc(r) for r in GOOD]
    bad = {
        "invalid_json": b'{"problem": "unterminated',
        "missing_field": _enc({"text": "no problem column here", "answer": "1"}),
        "empty_problem": _enc({"problem": "   \t", "answer": "1"}),
        "invalid_utf8": b'{"problem": "caf\xe9 \xff\xfe"}',
        "too_large": _enc({"problem": "1+1 " + "x" * 5_000_000, "answer": "2"}),
        "duplicate": _enc(GOOD[0]),
        "invalid_field": _enc({"problem": ["not", "text"]}),
        "invalid_domain": _enc({"problem": "Draw a cat.", "domain": "art"}),
        "missing_tests": _enc({"problem": "Write f.", "domain": "code"}),
        "empty_row": b"   ",
    }
    lines += list(bad.values())
    return lines, {reason: 1 for reason in bad}


def test_mixed_file_accepts_good_and_rejects_each_reason(wh, tmp_path):
    lines, expected = mixed_lines()
    path = tmp_path / "mixed.jsonl"
    _jsonl(path, lines)
    stats = run_ingest(path, warehouse=wh.path)
    assert stats["read"] == len(lines)
    assert stats["accepted"] + stats["rejected"] == len(lines)
    assert stats["accepted"] == len(GOOD) and stats["new_prompts"] == len(GOOD)
    assert stats["reasons"] == expected
    rejections = wh.query("select source_ref, reason_code, detail, payload from raw.raw_rejections order by source_ref")
    assert sorted(rejections["reason_code"]) == sorted(expected)
    assert all(ref.startswith(f"{path}:") for ref in rejections["source_ref"])
    too_large = rejections.filter(pl.col("reason_code") == "too_large").row(0, named=True)
    assert "[truncated: payload was" in too_large["payload"] and len(too_large["payload"]) < 1_100_000
    missing = rejections.filter(pl.col("reason_code") == "missing_field").row(0, named=True)
    assert "field 'problem'" in missing["detail"]
    assert rejections.filter(pl.col("reason_code") == "duplicate")["detail"][0].endswith(f"{path}:1")

    again = run_ingest(path, warehouse=wh.path)
    assert again["new_prompts"] == 0 and again["accepted"] + again["rejected"] == len(lines)
    assert wh.scalar("select count(*) from raw.raw_prompts") == len(GOOD)
    assert wh.scalar("select count(*) from raw.raw_rejections") == len(expected)
    assert wh.scalar("select count(*) from meta.runs where stage = 'ingest' and status = 'completed'") == 2


def test_prompt_id_is_content_hash_and_fields_are_typed(wh, tmp_path):
    path = tmp_path / "p.jsonl"
    _jsonl(path, [_enc(r) for r in GOOD])
    run_ingest(path, warehouse=wh.path, source="toy")
    rows = wh.query("select * from staging.stg_prompts order by problem_text").to_dicts()
    code = next(r for r in rows if r["domain"] == "code")
    assert json.loads(code["tests_json"]) == GOOD[2]["tests"]
    assert {r["reference_answer"] for r in rows if r["domain"] == "math"} == {"18", "6"}
    assert all(r["prompt_id"].startswith("p_") and r["source"] == "toy" and r["split"] == "train" for r in rows)
    # the same problem with different spacing is the same prompt
    _jsonl(path, [_enc({"problem": "Compute  7 + 5 * 3 - 4. ", "answer": "18"})])
    assert run_ingest(path, warehouse=wh.path, source="toy")["new_prompts"] == 0


def _frame() -> pl.DataFrame:
    return pl.DataFrame({
        "question": ["Compute 1 + 1.", "Compute 2 + 2.", "", "Compute 1 + 1."],
        "solution": ["2", "4", "0", "2"],
    })


@pytest.mark.parametrize("fmt", ["parquet", "csv", "hf"])
def test_other_formats_with_column_mapping(wh, tmp_path, fmt):
    df = _frame()
    if fmt == "parquet":
        path = tmp_path / "p.parquet"
        df.write_parquet(path)
    elif fmt == "csv":
        path = tmp_path / "p.csv"
        df.write_csv(path)
    else:
        import datasets

        path = tmp_path / "hf_folder"
        datasets.Dataset.from_dict(df.to_dict(as_series=False)).save_to_disk(str(path))
    stats = run_ingest(path, warehouse=wh.path, mapping={"problem": "question", "reference_answer": "solution"})
    assert (stats["read"], stats["accepted"], stats["rejected"]) == (4, 2, 2)
    assert stats["reasons"] == {"empty_problem": 1, "duplicate": 1}
    answers = wh.query("select reference_answer from raw.raw_prompts order by 1")["reference_answer"].to_list()
    assert answers == ["2", "4"]


def test_csv_malformed_and_invalid_utf8_rows(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"problem,answer\nCompute 1 + 1.,2\nonly_one_column\nCompute \xff.,3\n")
    stats = run_ingest(path, warehouse=wh.path)
    assert stats["reasons"] == {"malformed_row": 1, "invalid_utf8": 1}
    assert stats["accepted"] == 1


def test_hf_dataset_dict_keeps_split_names(wh, tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"problem": ["Compute 1 + 1."], "answer": ["2"]}),
        "test": datasets.Dataset.from_dict({"problem": ["Compute 3 + 3."], "answer": ["6"]}),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    run_ingest(tmp_path / "dd", warehouse=wh.path)
    assert sorted(wh.query("select split from raw.raw_prompts")["split"]) == ["test", "train"]


def test_unreadable_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        list(iter_records(tmp_path / "missing.jsonl"))
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(IngestError, match="unknown input format"):
        list(iter_records(bad))
    broken = tmp_path / "broken.parquet"
    pl.DataFrame({"problem": ["a"] * 100}).write_parquet(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(IngestError, match="corrupt or truncated"):
        list(iter_records(broken))


TRACE_ROWS = [
    # chat messages with a <think> block
    {"messages": [{"role": "user", "content": "Compute 2 + 3."},
                  {"role": "assistant", "content": "<think>\n2+3=5.\n</think>\n\\boxed{5}"}], "reference_answer": "5"},
    # a second sample of the same problem
    {"messages": [{"role": "user", "content": "Compute 2 + 3."},
                  {"role": "assistant", "content": "<think>\n2+3=6.\n</think>\n\\boxed{6}"}], "reference_answer": "5"},
    # ShareGPT conversations, truncated reasoning
    {"conversations": [{"from": "human", "value": "Compute 4 * 2."}, {"from": "gpt", "value": "<think>\n4*2 is"}],
     "reference_answer": "8"},
    # flat problem + reasoning + answer columns
    {"problem": "Compute 9 - 1.", "reasoning": "9-1=8.", "model_answer": "\\boxed{8}", "answer": "8"},
    # flat problem + completion
    {"question": "Compute 1 * 1.", "response": "<think>1*1=1.</think>\\boxed{1}", "answer": "1"},
]


def test_trace_import_layouts(wh, tmp_path):
    path = tmp_path / "traces.jsonl"
    bad = [_enc({"messages": [{"role": "user", "content": "Q?"}]}),  # no assistant turn
           _enc({"messages": "not a list"}),
           _enc({"problem": "Compute 5 + 5."}),  # no completion at all
           _enc(TRACE_ROWS[0])]  # duplicate trace
    _jsonl(path, [_enc(r) for r in TRACE_ROWS] + bad)
    stats = run_ingest(path, kind="traces", model="hub-teacher", warehouse=wh.path)
    assert stats["accepted"] == len(TRACE_ROWS) and stats["rejected"] == len(bad)
    assert stats["reasons"] == {"missing_field": 2, "invalid_field": 1, "duplicate": 1}
    traces = wh.query(
        "select t.*, p.problem_text, p.reference_answer from staging.stg_traces t"
        " join staging.stg_prompts p using (prompt_id) order by t.source_ref"
    ).to_dicts()
    assert {t["origin"] for t in traces} == {"imported"} and {t["model_id"] for t in traces} == {"hub-teacher"}
    first, second, truncated, flat, plain = traces
    assert (first["reasoning_text"], first["answer_text"], first["sample_index"]) == ("2+3=5.", "\\boxed{5}", 0)
    assert second["sample_index"] == 1 and second["prompt_id"] == first["prompt_id"]
    assert truncated["is_truncated"] and truncated["answer_text"] == ""
    assert flat["reasoning_text"] == "9-1=8." and flat["reference_answer"] == "8"
    assert plain["problem_text"] == "Compute 1 * 1." and plain["answer_text"] == "\\boxed{1}"
    assert wh.scalar("select count(*) from raw.raw_prompts") == 4
    assert run_ingest(path, kind="traces", model="hub-teacher", warehouse=wh.path)["new_traces"] == 0


@pytest.mark.parametrize(
    ("completion", "reasoning", "answer", "closed"),
    [
        ("<think>\na\n</think>\nB", "a", "B", True),
        ("a</think>B", "a", "B", True),  # template pre-filled <think>
        ("<think>a", "a", "", False),
        ("no block", None, "no block", True),
        ("", None, "", True),
    ],
)
def test_split_think(completion, reasoning, answer, closed):
    got = split_think(completion)
    assert (got.reasoning, got.answer, got.is_closed) == (reasoning, answer, closed)


def test_streaming_keeps_memory_bounded(wh, tmp_path):
    """A file far larger than one shard streams through in shards (rows read lazily)."""
    path = tmp_path / "big.jsonl"
    with path.open("w") as handle:
        for i in range(12_000):
            handle.write(json.dumps({"problem": f"Compute {i} + 1.", "answer": str(i + 1)}) + "\n")
    records = iter_records(path)
    assert next(records).source_ref == f"{path}:1"  # a generator, not a list
    stats = run_ingest(path, warehouse=wh.path)
    assert stats["new_prompts"] == 12_000
