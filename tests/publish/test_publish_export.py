"""Export round-trip: Parquet (polars), JSONL and the HF folder (load_from_disk) match the SQL view."""

from __future__ import annotations

import json

import polars as pl
import pytest
from test_publish_versions import publish, seed

from tasks.publish import PublishError, sft_view_name
from tasks.publish.card import length_histogram
from warehouse.export import export_dataset


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from warehouse import Warehouse

    wh = Warehouse(tmp_path_factory.mktemp("export") / "warehouse.duckdb")
    seed(wh, n_prompts=4, per_prompt=2)
    publish(wh, "toy", ["t0_0", "t1_1"])
    publish(wh, "toy", ["t3_1", "t0_1", "t2_0", "t1_0"], policy="provenance")
    return wh


def view(wh) -> pl.DataFrame:
    return wh.query(f"select * from {sft_view_name('toy')} order by rank, trace_id")


def test_parquet_matches_the_view_row_for_row(published, tmp_path):
    path = export_dataset(published, "toy", "parquet", tmp_path)
    folder = tmp_path / "toy-v2" / "parquet"
    assert path == folder / "toy-v2.parquet"
    assert pl.read_parquet(path).equals(view(published))
    card = (folder / "README.md").read_text()
    for heading in ("## Use it", "## Example row", "## Evaluation", "## Lineage", "## Counts per stage",
                    "## Length histogram", "## Verdict breakdown"):
        assert heading in card
    assert "`provenance`" in card and "gen-1" in card and "select-1" in card
    front = card.split("---")[1]
    for key in ("license: other", 'language: ["en"]', 'task_categories: ["text-generation"]', "configs:",
                'path: "toy-v2.parquet"', "size_categories: [n<1K]"):
        assert key in front, key
    assert 'load_dataset("parquet", data_files="toy-v2.parquet", split="train")' in card and "SFTTrainer" in card
    manifest = json.loads((folder / "potstill_export.json").read_text())
    assert (manifest["version"], manifest["n_rows_exported"]) == (2, 4)


def test_jsonl_round_trip(published, tmp_path):
    path = export_dataset(published, "toy@2", "jsonl", tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    expected = view(published)
    assert [r["trace_id"] for r in rows] == expected["trace_id"].to_list()
    assert [r["messages"] for r in rows] == [m.to_list() for m in expected["messages"]]


def test_hf_folder_loads_with_load_from_disk(published, tmp_path):
    import datasets

    path = export_dataset(published, "toy@latest", "hf", tmp_path)
    assert path == tmp_path / "toy-v2" / "hf"
    ds = datasets.load_from_disk(str(path))
    assert pl.from_arrow(ds.data.table).equals(view(published))
    assert "load_from_disk" in (path / "README.md").read_text()
    # another format of the same version: its own folder and card, nothing mixed
    export_dataset(published, "toy@latest", "jsonl", tmp_path)
    assert sorted(p.name for p in (tmp_path / "toy-v2").iterdir()) == ["hf", "jsonl"]
    assert 'load_dataset("json", data_files="toy-v2.jsonl"' in (tmp_path / "toy-v2" / "jsonl" / "README.md").read_text()


def test_old_version_exports_its_own_rows(published, tmp_path):
    path = export_dataset(published, "toy@1", "parquet", tmp_path)
    assert pl.read_parquet(path)["trace_id"].to_list() == ["t0_0", "t1_1"]


def test_unknown_format_and_version(published, tmp_path):
    with pytest.raises(PublishError, match="format 'csv'"):
        export_dataset(published, "toy", "csv", tmp_path)
    with pytest.raises(PublishError, match="no published version 7"):
        export_dataset(published, "toy@7", "parquet", tmp_path)


@pytest.mark.parametrize(("values", "bins", "expected"), [
    ([5, 5, 5], 4, [(5, 5, 3)]),
    ([0, 10], 2, [(0, 5, 1), (6, 10, 1)]),
    ([10, 11], 10, [(10, 10, 1), (11, 11, 1)]),
    ([], 3, []),
])
def test_length_histogram(values, bins, expected):
    assert length_histogram(pl.Series(values, dtype=pl.Int64), n_bins=bins) == expected
