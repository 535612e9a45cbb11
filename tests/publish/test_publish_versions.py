"""Dataset versions: idempotent publishing, immutability, latest resolution, contract gate."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from tasks.common.text import join_think
from tasks.contracts import ContractViolation
from tasks.publish import PublishError, content_hash, parse_spec, sft_view_name
from tasks.publish.sql import DatasetNameError, view_suffix
from warehouse.datasets import publish_dataset, resolve_version, verify_version

NOW = datetime(2025, 1, 1)


def seed(wh, n_prompts: int = 3, per_prompt: int = 2) -> None:
    prompts = [{"prompt_id": f"p{i}", "source": "toy", "domain": "math", "problem_text": f"{i}+1?", "split": "train",
                "ingested_at": NOW, "run_id": "ingest-1"} for i in range(n_prompts)]
    traces = []
    for i in range(n_prompts):
        for k in range(per_prompt):
            reasoning = f"{i}+1={i + 1}." + " check." * k
            traces.append({
                "trace_id": f"t{i}_{k}", "prompt_id": f"p{i}", "model_id": "teacher@r1", "origin": "generated",
                "sample_index": k, "completion_text": join_think(reasoning, f"\\boxed{{{i + 1}}}"),
                "reasoning_text": reasoning, "answer_text": f"\\boxed{{{i + 1}}}", "n_prompt_tokens": 4,
                "n_completion_tokens": 10 + k, "finish_reason": "stop", "is_truncated": False,
                "temperature": 0.6, "top_p": 1.0, "created_at": NOW, "run_id": "gen-1",
            })
    wh.load("raw.raw_prompts", pl.DataFrame(prompts), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame(traces), key=["trace_id"])


def selection(ids: list[str], stage: str = "main") -> pl.DataFrame:
    return pl.DataFrame({"trace_id": ids, "rank": list(range(len(ids))), "stage": [stage] * len(ids)})


def publish(wh, name: str, ids: list[str], **kw):
    args = {"policy": "random", "params": {"budget": len(ids), "seed": 0}, "config_fingerprint": "fp1",
            "source_run_ids": ["select-1"]}
    args.update(kw)
    return publish_dataset(wh, name, selection(ids), **args)


@pytest.mark.parametrize(("spec", "expected"), [("toy", ("toy", None)), ("toy@latest", ("toy", None)),
                                                ("toy@3", ("toy", 3)), ("a-b.c@1", ("a-b.c", 1))])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["toy@0", "toy@x", "Toy", "a b", "", "@1"])
def test_bad_specs_are_rejected(spec):
    with pytest.raises((PublishError, DatasetNameError)):
        parse_spec(spec)


def test_view_names_are_sanitised():
    assert view_suffix("toy-math.v2") == "toy_math_v2"
    assert sft_view_name("toy") == "curated.cur_sft_toy"


def test_content_hash_depends_on_order_and_text():
    base = pl.DataFrame({"trace_id": ["a", "b"], "rank": [0, 1], "stage": ["main", "main"],
                         "prompt_sha256": ["p", "p"], "completion_sha256": ["x", "y"]})
    assert content_hash(base) == content_hash(base.reverse())  # sorted by rank, not by input order
    assert content_hash(base) != content_hash(base.with_columns(rank=pl.Series([1, 0])))
    assert content_hash(base) != content_hash(base.with_columns(completion_sha256=pl.Series(["x", "z"])))
    assert content_hash(base) != content_hash(base.with_columns(stage=pl.Series(["main", "high_temp"])))


def test_publish_twice_is_idempotent(wh):
    seed(wh)
    first = publish(wh, "toy", ["t0_0", "t1_0", "t2_1"])
    again = publish(wh, "toy", ["t0_0", "t1_0", "t2_1"], source_run_ids=["select-2"])
    assert (first.version, first.is_new) == (1, True)
    assert (again.version, again.is_new, again.content_hash) == (1, False, first.content_hash)
    assert wh.scalar("select count(*) from curated.cur_datasets") == 1
    assert wh.scalar("select count(*) from curated.cur_dataset_rows") == 3
    assert first.n_rows == 3 and first.n_tokens == 10 + 10 + 11


def test_published_version_never_changes_after_later_runs(wh):
    seed(wh)
    v1 = publish(wh, "toy", ["t0_0", "t1_0"])
    rows_v1 = wh.query("select * from curated.cur_dataset_rows where version = 1 order by rank")
    v2 = publish(wh, "toy", ["t0_1", "t1_1", "t2_0"], policy="longest")
    # a later run adds traces upstream: the published versions stay as they were
    wh.load("raw.raw_traces", wh.query("select * from raw.raw_traces where trace_id = 't0_0'")
            .with_columns(trace_id=pl.lit("t9"), run_id=pl.lit("gen-2")), key=["trace_id"])
    assert v2.version == 2
    assert resolve_version(wh, "toy@1").content_hash == v1.content_hash
    assert wh.query("select * from curated.cur_dataset_rows where version = 1 order by rank").equals(rows_v1)
    assert verify_version(wh, "toy@1") and verify_version(wh, "toy@2")
    assert resolve_version(wh, "toy").version == 2
    assert resolve_version(wh, "toy@latest").policy == "longest"


def test_sft_view_shows_latest_version_in_chat_format(wh):
    seed(wh)
    publish(wh, "toy-math", ["t0_0"])
    publish(wh, "toy-math", ["t1_1", "t2_0"])
    view = wh.query(f"select * from {sft_view_name('toy-math')}")
    assert view["trace_id"].to_list() == ["t1_1", "t2_0"]
    assert view["dataset_version"].unique().to_list() == [2]
    messages = view["messages"][0].to_list()
    assert messages == [{"role": "user", "content": "1+1?"},
                        {"role": "assistant", "content": "<think>\n1+1=2. check.\n</think>\n\n\\boxed{2}"}]


def test_redi_pairs_view_pairs_positive_and_negative(wh):
    seed(wh)
    sel = pl.DataFrame({"trace_id": ["t0_0", "t0_1", "t1_0"], "rank": [0, 1, 2],
                        "stage": ["positive", "negative", "positive"]})
    publish_dataset(wh, "redi", sel, policy="redi_pairs", params={}, config_fingerprint=None,
                    source_run_ids=[])
    pairs = wh.query("select * from curated.cur_redi_pairs_redi")
    assert pairs.select("prompt_id", "chosen_trace_id", "rejected_trace_id").rows() == [("p0", "t0_0", "t0_1")]
    assert wh.scalar("select count(*) from information_schema.tables where table_name = 'cur_redi_pairs_toy'") == 0


def test_unknown_trace_blocks_publish_and_marks_version_failed(wh):
    seed(wh)
    with pytest.raises(ContractViolation, match="sql_referential_integrity") as info:
        publish(wh, "toy", ["t0_0", "t_missing"])
    assert "t_missing" in str(info.value)
    row = wh.query("select version, status, status_reason from curated.cur_datasets").to_dicts()
    assert row == [{"version": 1, "status": "failed",
                    "status_reason": "dataset_rows.sql_referential_integrity(trace_id)"}]
    with pytest.raises(PublishError, match="no published version"):
        resolve_version(wh, "toy")
    assert wh.scalar("select count(*) from curated.cur_dataset_rows") == 0


def test_empty_selection_and_missing_column_are_publish_errors(wh):
    seed(wh)
    with pytest.raises(PublishError, match="empty"):
        publish(wh, "toy", [])
    with pytest.raises(PublishError, match="'trace_id'"):
        publish_dataset(wh, "toy", pl.DataFrame({"id": ["t0_0"]}), policy="random", params={},
                        config_fingerprint=None, source_run_ids=[])
