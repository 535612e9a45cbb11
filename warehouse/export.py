"""Export a published dataset version as Parquet, JSONL or a Hugging Face `save_to_disk` folder,
with a dataset card (README.md) and a manifest (`potstill_export.json`) next to the data.

The rows are exactly those of `curated.cur_sft_<name>` (for the latest version) or the same SQL
pinned to a version, in (rank, trace_id) order.

Each export has its own folder, `OUT/NAME-vN/<format>/`, holding the data, its card and manifest,
so several formats of several versions never mix.

>>> export_dataset(wh, "toy@1", "parquet", Path("out"))   # doctest: +SKIP
PosixPath('out/toy-v1/parquet/toy-v1.parquet')
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl

from tasks.publish.card import render_card
from tasks.publish.sql import redi_pairs_sql, sft_rows_sql
from tasks.publish.versions import PublishError
from warehouse.contracts import table_exists
from warehouse.datasets import resolve_version

FORMATS = ("parquet", "jsonl", "hf")


def version_rows(wh, dataset_name: str, version: int | None) -> pl.DataFrame:
    return wh.query(sft_rows_sql(dataset_name, version))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        df.write_parquet(tmp)
    else:
        df.write_ndjson(tmp)
    os.replace(tmp, path)


def _card_facts(wh, v, rows: pl.DataFrame):
    ids = wh.query(
        "select distinct t.run_id as run_id from curated.cur_dataset_rows r join staging.stg_traces t using (trace_id)"
        " where r.dataset_name = ? and r.version = ?"
        " union select distinct p.run_id from curated.cur_dataset_rows r join staging.stg_traces t using (trace_id)"
        " join staging.stg_prompts p on p.prompt_id = t.prompt_id where r.dataset_name = ? and r.version = ?",
        [v.dataset_name, v.version, v.dataset_name, v.version],
    )["run_id"].to_list()
    run_ids = sorted(set(ids) | set(v.source_run_ids))
    runs = wh.query(
        "select i.run_id, r.flow_name, r.stage, r.status, r.config_fingerprint, r.started_at"
        " from (select unnest(?::varchar[]) as run_id) i left join meta.runs r using (run_id)"
        " order by r.started_at nulls last, i.run_id",
        [run_ids],
    )
    verdicts = None
    with wh.connect() as con:
        has_verifications = table_exists(con, "raw.raw_verifications")
    if has_verifications:
        verdicts = wh.query(
            "select v.verifier, v.verdict_status, count(*) as n_traces from curated.cur_dataset_rows r"
            " join staging.stg_verifications v using (trace_id) where r.dataset_name = ? and r.version = ?"
            " group by all order by v.verifier, v.verdict_status",
            [v.dataset_name, v.version],
        )
    training = wh.query(
        "select training_run_id, base_model, status, n_steps, final_loss, checkpoint_path from meta.training_runs"
        " where dataset_name = ? and dataset_version = ? order by started_at",
        [v.dataset_name, v.version],
    )
    evals = wh.query(
        "with tuned as (select * from meta.eval_results where domain = 'all' and training_run_id in"
        "   (select training_run_id from meta.training_runs where dataset_name = ? and dataset_version = ?)),"
        " base as (select r.* from meta.eval_results r join (select distinct eval_set_hash, eval_config_fingerprint from tuned) t"
        "   using (eval_set_hash, eval_config_fingerprint) where r.training_run_id is null and r.domain = 'all')"
        " select case when training_run_id is null then 'base' else 'fine-tuned' end as model, model_id,"
        " n_problems, round(pass_at_1, 3) as pass_at_1, k, round(pass_at_k, 3) as pass_at_k, eval_set"
        " from (select * from base union all select * from tuned) order by training_run_id nulls first, created_at",
        [v.dataset_name, v.version],
    )
    recipe = wh.query(
        "select c.config_json from meta.runs c where c.flow_name = 'curate' and c.run_id in"
        " (select parent_run_id from meta.runs where run_id in (select unnest(?::varchar[])))"
        " order by c.started_at desc limit 1",
        [list(v.source_run_ids)],
    )
    recipe_facts = json.loads(recipe["config_json"][0]) if recipe.height and recipe["config_json"][0] else {}
    return runs, verdicts, training, evals, recipe_facts


def export_dataset(wh, spec: str, fmt: str, out: Path) -> Path:
    """Write `spec` (`NAME`, `NAME@latest` or `NAME@N`) under `out/<name>-v<N>/<fmt>/`; returns the data path.

    parquet/jsonl → `<folder>/<name>-v<N>.<ext>` (plus `<name>-v<N>.pairs.<ext>` for pair datasets);
    hf → the folder itself is a `datasets.save_to_disk` folder (`load_from_disk(folder)`), pairs in `pairs/`.
    The card (README.md) and manifest (potstill_export.json) sit in the same folder.
    """
    if fmt not in FORMATS:
        raise PublishError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    v = resolve_version(wh, spec)
    rows = version_rows(wh, v.dataset_name, v.version)
    if rows.height != v.n_rows:
        raise PublishError(
            f"export {v.spec}: {rows.height} rows resolve but the version holds {v.n_rows}; "
            "a trace or prompt it references is missing from the warehouse"
        )
    pairs = wh.query(redi_pairs_sql(v.dataset_name, v.version))
    stem = f"{v.dataset_name}-v{v.version}"
    out = Path(out) / stem / fmt
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    if fmt == "hf":
        import datasets

        datasets.Dataset.from_polars(rows).save_to_disk(str(out))
        data_path = out
        files.append("(datasets.load_from_disk folder: data-*.arrow, dataset_info.json, state.json)")
        if pairs.height:
            datasets.Dataset.from_polars(pairs).save_to_disk(str(out / "pairs"))
            files.append("pairs/ (REDI preference pairs: prompt, chosen, rejected)")
    else:
        ext = "parquet" if fmt == "parquet" else "jsonl"
        data_path = out / f"{stem}.{ext}"
        _write(rows, data_path, fmt)
        files.append(data_path.name)
        if pairs.height:
            pairs_path = out / f"{stem}.pairs.{ext}"
            _write(pairs, pairs_path, fmt)
            files.append(pairs_path.name)
    runs, verdicts, training, evals, recipe = _card_facts(wh, v, rows)
    files += ["README.md", "potstill_export.json"]
    data_files = "data-*.arrow" if fmt == "hf" else data_path.name
    (out / "README.md").write_text(render_card(v.as_dict(), rows, runs=runs, verdicts=verdicts,
                                               training_runs=training, files=files, fmt=fmt, data_files=data_files,
                                               evals=evals, recipe=recipe))
    manifest = {
        **v.as_dict(), "format": fmt, "n_rows_exported": rows.height, "n_pairs_exported": pairs.height,
        "data_path": data_path.name if data_path != out else ".",
        "data_sha256": _sha256_file(data_path) if data_path.is_file() else None,
    }
    (out / "potstill_export.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return data_path
