"""Corrupted and truncated input files: rows before the damage are kept, the damaged row is a
rejection with a reason, an unreadable container is a clear IngestError and a failed run."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.ingest import run_ingest
from tasks.ingest.readers import IngestError

ROWS = [{"problem": f"Compute {i} + {i} * 2. Ünïcode: αβγ", "answer": str(3 * i)} for i in range(10)]


def _jsonl_bytes() -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in ROWS)


def _cut_inside_line(data: bytes, line: int, *, inside_multibyte: bool = False) -> bytes:
    """`data` cut in the middle of (1-based) `line`; optionally inside a multi-byte UTF-8 character."""
    start = sum(len(x) + 1 for x in data.split(b"\n")[: line - 1])
    if inside_multibyte:
        return data[: data.index("α".encode(), start) + 1]
    return data[: start + 15]


@pytest.mark.parametrize(
    "multibyte, reason",
    [(False, "invalid_json"), (True, "invalid_utf8")],
    ids=["cut_mid_line", "cut_mid_character"],
)
def test_jsonl_cut_mid_line_keeps_the_rows_before_and_rejects_the_cut_row(wh, tmp_path, multibyte, reason):
    path = tmp_path / "cut.jsonl"
    path.write_bytes(_cut_inside_line(_jsonl_bytes(), 7, inside_multibyte=multibyte))
    stats = run_ingest(path, warehouse=wh.path)
    assert (stats["read"], stats["accepted"], stats["rejected"]) == (7, 6, 1)
    assert stats["reasons"] == {reason: 1}
    assert wh.scalar("select count(*) from raw.raw_prompts") == 6
    ref = wh.scalar("select source_ref from raw.raw_rejections")
    assert ref == f"{path}:7", "the rejection names the file and line"


@pytest.mark.parametrize("keep", [0.5, 0.97, 0.0], ids=["half", "footer_cut", "empty"])
def test_truncated_parquet_is_a_clear_error_and_a_failed_run(wh, tmp_path, keep):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), whole)
    data = whole.read_bytes()
    path = tmp_path / "truncated.parquet"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(IngestError, match="truncated") as raised:
        run_ingest(path, warehouse=wh.path)
    assert str(path) in str(raised.value)
    assert wh.scalar("select count(*) from raw.raw_prompts") == 0, "nothing half-loaded"
    run = wh.query("select status, error_message from meta.runs where stage = 'ingest'").row(0, named=True)
    assert run["status"] == "failed" and "truncated" in run["error_message"]


def test_garbage_with_a_parquet_name_is_a_clear_error(wh, tmp_path):
    path = tmp_path / "not_really.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(IngestError, match="corrupt or truncated"):
        run_ingest(path, warehouse=wh.path)


@pytest.mark.parametrize(
    "tail, n_rows, rejected",
    [
        ('"Compute 10 + 10 * 2.",3', 11, {"malformed_row": 1}),  # cut before the last column
        ('"Compute 10 + 10', 11, {"malformed_row": 1}),  # cut inside a quoted field
    ],
    ids=["cut_mid_row", "cut_mid_quote"],
)
def test_csv_cut_mid_row_is_a_rejection(wh, tmp_path, tail, n_rows, rejected):
    path = tmp_path / "cut.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["problem", "answer", "split"])
        writer.writerows([r["problem"], r["answer"], "train"] for r in ROWS)
        handle.write(tail)
    stats = run_ingest(path, warehouse=wh.path)
    assert stats["read"] == n_rows and stats["accepted"] == len(ROWS)
    assert stats["reasons"] == rejected
