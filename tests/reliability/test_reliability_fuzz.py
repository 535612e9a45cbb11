"""Fuzzing every ingest parser: any input row is accepted or rejected with a reason, never a crash.

Readers (JSONL bytes, CSV text, Parquet tables) must yield one record per input row, each either
parsed or carrying a reason code; the row parsers (prompt and trace layouts) must accept or raise
`RowRejected`; the batch core must keep accepted + rejected = read and build its frames.
"""

from __future__ import annotations

import json
import string

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.ingest.core import IngestState, ingest_batch
from tasks.ingest.readers import RawRecord, iter_records
from tasks.ingest.rows import IngestConfig, RowRejected, parse_prompt, parse_trace_row

FUZZ = settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
FUZZ_FILES = settings(FUZZ, max_examples=40)

# Numbers far beyond int32, infinities and lone-surrogate escapes are generated on purpose: the
# fuzzer found each of them crashing ingestion once (regression cases at the bottom).
INT_RANGE = (-(2**70), 2**70)
SURROGATES_REJECTED = True
PROMPT_COLUMNS = ["problem", "question", "prompt", "answer", "reference_answer", "tests", "domain", "split", "id"]
TRACE_COLUMNS = PROMPT_COLUMNS + ["messages", "conversations", "completion", "response", "reasoning", "model_answer",
                                  "n_completion_tokens", "num_tokens", "finish_reason", "sample_index"]

# JSON values as a real dataset might hold them, including the awkward ones: lone surrogates,
# huge and non-finite numbers, nesting, empty strings, think tags.
_awkward = ["", " ", "<think>", "</think>", "<think>x</think>y", "\\boxed{4}", "math", "code", "MATH", "length",
            "stop", "a\x00b", "[\"assert f(1) == 2\"]", "[1, 2]", "not json [", "\u2028", "e\u0301"]
text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(_awkward + (["\ud800"] if SURROGATES_REJECTED else [])),
)
bounded_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True))
number = st.one_of(st.integers(*INT_RANGE), bounded_float, st.booleans())
leaf = st.one_of(st.none(), text, number)
value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.sampled_from(["role", "from", "content", "value"]),
                                                                   inner, max_size=4)), max_leaves=10)
turn = st.fixed_dictionaries({}, optional={"role": st.sampled_from(["user", "assistant", "gpt", "human", "system", 3]),
                                          "from": st.sampled_from(["human", "gpt"]), "content": value, "value": value})
messages = st.lists(st.one_of(turn, value), max_size=4)


def row_of(columns: list[str]) -> st.SearchStrategy[dict]:
    return st.dictionaries(st.sampled_from(columns), value, max_size=8) | st.fixed_dictionaries(
        {}, optional={c: (messages if c in ("messages", "conversations") else value) for c in columns})


def check_record(record: RawRecord) -> None:
    assert isinstance(record.source_ref, str) and record.source_ref
    if record.row is None:
        assert record.reason_code and record.reason_code.islower() and " " not in record.reason_code
    else:
        assert isinstance(record.row, dict) and record.reason_code is None


def check_batch(records: list[RawRecord], kind: str, cfg: IngestConfig) -> None:
    batch = ingest_batch(records, cfg, kind, IngestState())
    assert batch.n_accepted + len(batch.rejections) == batch.n_read == len(records)
    assert all(reason and reason.islower() for _, reason, _, _ in batch.rejections)
    if kind == "traces":
        assert batch.traces.height == batch.n_accepted
    # what is accepted must be storable: UTF-8 text (no lone surrogates) in every string column
    for frame in (batch.prompts, batch.traces):
        for name, dtype in frame.schema.items():
            if dtype == pa.string() or str(dtype) == "String":
                for item in frame[name].drop_nulls().to_list():
                    item.encode("utf-8")


@FUZZ
@given(row=row_of(PROMPT_COLUMNS))
def test_parse_prompt_accepts_or_rejects_with_a_reason(row):
    try:
        parsed = parse_prompt(row, IngestConfig(source="fuzz"))
    except RowRejected as exc:
        assert exc.reason_code.islower() and exc.detail
        return
    assert parsed["problem_text"].strip() and parsed["domain"] in ("math", "code")
    check_batch([RawRecord("fuzz:1", row, None)], "prompts", IngestConfig(source="fuzz"))


@FUZZ
@given(row=row_of(TRACE_COLUMNS))
def test_parse_trace_accepts_or_rejects_with_a_reason(row):
    cfg = IngestConfig(source="fuzz", model_id="m")
    try:
        parsed = parse_trace_row(row, cfg)
    except RowRejected as exc:
        assert exc.reason_code.islower() and exc.detail
        return
    assert parsed.traces
    for trace in parsed.traces:
        assert trace["prompt_id"] == parsed.prompt["prompt_id"] and trace["completion_text"].strip()
    check_batch([RawRecord("fuzz:1", row, None)], "traces", cfg)


@pytest.mark.slow
@FUZZ_FILES
@given(lines=st.lists(st.one_of(st.binary(max_size=60), row_of(TRACE_COLUMNS).map(
    lambda r: json.dumps(r, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))), max_size=8))
def test_jsonl_reader_yields_one_verdict_per_line(tmp_path_factory, lines):
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
    records = list(iter_records(path, max_row_bytes=200))
    assert len(records) == len(lines)
    for record in records:
        check_record(record)
    check_batch(records, "prompts", IngestConfig(source="fuzz"))
    check_batch(records, "traces", IngestConfig(source="fuzz", model_id="m"))


csv_cell = st.text(alphabet=string.printable + "é\u2028\ufeff\"", max_size=20)


@pytest.mark.slow
@FUZZ_FILES
@given(header=st.lists(st.sampled_from(TRACE_COLUMNS + ["extra"]), min_size=1, max_size=5, unique=True),
       body=st.lists(st.lists(csv_cell, min_size=0, max_size=6), max_size=6), raw_tail=st.binary(max_size=20))
def test_csv_reader_never_crashes(tmp_path_factory, header, body, raw_tail):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(body)
    path = tmp_path_factory.mktemp("fuzz") / "rows.csv"
    path.write_bytes(buffer.getvalue().encode() + raw_tail)
    records = list(iter_records(path))
    for record in records:
        check_record(record)
    check_batch(records, "prompts", IngestConfig(source="fuzz"))
    check_batch(records, "traces", IngestConfig(source="fuzz", model_id="m"))


parquet_column = st.one_of(
    st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=3, max_size=3),  # Parquet holds int64
    st.lists(st.one_of(st.none(), bounded_float), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=3)), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                                                                  "content": st.text(max_size=10)}), max_size=3)),
             min_size=3, max_size=3),
)


@pytest.mark.slow
@FUZZ_FILES
@given(columns=st.dictionaries(st.sampled_from(TRACE_COLUMNS), parquet_column, min_size=1, max_size=6))
def test_parquet_reader_never_crashes(tmp_path_factory, columns):
    path = tmp_path_factory.mktemp("fuzz") / "rows.parquet"
    pq.write_table(pa.table(columns), path)
    records = list(iter_records(path))
    assert len(records) == 3
    for record in records:
        check_record(record)
    check_batch(records, "prompts", IngestConfig(source="fuzz"))
    check_batch(records, "traces", IngestConfig(source="fuzz", model_id="m"))


@pytest.mark.parametrize(
    "row",
    [
        {"problem": "p", "completion": "c", "n_completion_tokens": float("inf")},
        {"problem": "p", "completion": "c", "sample_index": 2**40},
        {"problem": "p", "completion": "c", "n_completion_tokens": 2**31},
    ],
    ids=["tokens_inf", "sample_index_2e40", "tokens_over_int32"],
)
def test_found_by_fuzzing_out_of_range_integers_are_rejected(row):
    """Inputs the fuzzer found: each must be an invalid_field rejection, not an exception."""
    batch = ingest_batch([RawRecord("fuzz:1", row, None)], IngestConfig(source="fuzz", model_id="m"), "traces", IngestState())
    assert [r[1] for r in batch.rejections] == ["invalid_field"]


@pytest.mark.parametrize("line", [b'{"problem": "\\ud800 what?", "answer": "1"}',
                                  b'{"problem": "p", "completion": "\\udfff"}'], ids=["problem", "completion"])
def test_found_by_fuzzing_lone_surrogate_escapes_are_rejected(tmp_path, line):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(line + b"\n")
    records = list(iter_records(path))
    batch = ingest_batch(records, IngestConfig(source="fuzz", model_id="m"), "traces", IngestState())
    assert [r[1] for r in batch.rejections] == ["invalid_utf8"]
