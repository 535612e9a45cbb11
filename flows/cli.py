"""The `potstill` command line: thin wrappers over the cores and flows.

Errors print one line and exit non-zero; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="potstill: curate reasoning-distillation data into a DuckDB warehouse.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
ingest_app = typer.Typer(help="Load prompts or existing trace datasets into the warehouse.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
STATE: dict[str, object] = {"warehouse": None, "debug": False}

WarehouseOpt = Annotated[str | None, typer.Option("--warehouse", "-w", help="lake folder, postgresql://...?data_path=... catalog, or a single *.duckdb file (default: $POTSTILL_WAREHOUSE or ~/.local/share/potstill/lake)")]


def _safe(text: object) -> str:
    """Data made safe to print: rich markup escaped, ANSI escapes and other control characters
    shown as their escape codes instead of being interpreted by the terminal."""
    from rich.markup import escape

    return escape(_safe_text("" if text is None else text))


class CliError(RuntimeError):
    """A user-facing error: printed as one line."""


@app.callback()
def _root(
    warehouse: WarehouseOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors", metavar="")] = False,
) -> None:
    STATE["warehouse"] = warehouse
    STATE["debug"] = debug


def _wh_path(local: str | None = None) -> str:
    from warehouse import default_path

    return str(local or STATE["warehouse"] or default_path())


def _warehouse(local: str | None = None, read_only: bool = False):
    from warehouse import Warehouse

    path = _wh_path(local)
    wh = Warehouse(path, read_only=read_only)
    if read_only and not wh.exists():
        raise CliError(f"no warehouse at {path}; run `potstill init` or point --warehouse elsewhere")
    return wh


def _parse_map(pairs: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CliError(f"--map {pair!r}: expected FIELD=COLUMN, e.g. --map problem=question")
        field_name, column = pair.split("=", 1)
        mapping[field_name.strip()] = column.strip()
    return mapping


@app.command()
def init(warehouse: WarehouseOpt = None) -> None:
    """Build the warehouse (or bring it up to date) and show where it is."""
    wh = _warehouse(warehouse)
    applied = wh.migrate()
    console.print(f"warehouse {wh.path}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ", up to date"))


def _ingest(kind: str, path: str, warehouse: str | None, formats: list[str] | None = None, **kwargs) -> None:
    from rich.markup import escape

    from flows.ingest import run_ingest
    from tasks.ingest.readers import FORMATS
    from tasks.ingest.rows import SHAPES

    fmt, shape = None, "auto"
    for value in formats or []:
        if value in FORMATS:
            fmt = value
        elif value in SHAPES or value in SHAPE_ALIASES:
            shape = SHAPE_ALIASES.get(value, value)
        else:
            raise CliError(f"--format {value!r}: choose a file format ({', '.join(FORMATS)}) "
                           f"or a row shape ({', '.join([*SHAPES, *SHAPE_ALIASES])})")
    if kind != "traces" and shape != "auto":
        raise CliError(f"--format {shape}: row shapes apply to `potstill ingest traces`")
    if kind == "traces":
        kwargs["shape"] = shape

    def clean(text: str) -> str:  # data never drives the terminal: no markup, no control characters
        return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))

    with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        bar = progress.add_task(clean(Path(path).name if not path.startswith("hf://") else path), total=None)
        stats = run_ingest(path, kind=kind, warehouse=_wh_path(warehouse), fmt=fmt,
                           on_shard=lambda n: progress.advance(bar, n), **kwargs)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats["reasons"].items())) or "none"
    made = (f"{stats['new_logprobs']} new log-prob records" if kind == "logprobs" else
            f"{stats['new_prompts']} new prompts, {stats['new_traces']} new traces"
            + (f", {stats['new_verdicts']} source verdicts, {stats['new_logprobs']} log-prob records" if kind == "traces" else ""))
    parts = f" (+{stats['items_rejected']} parts of accepted rows)" if stats["items_rejected"] else ""
    console.print(f"{clean(path)}: read {stats['read']}, accepted {stats['accepted']} ({made}), "
                  f"rejected {stats['rejected']}{parts} ({reasons})", highlight=False)
    if stats["logprobs_unplaced"]:
        console.print(f"  {stats['logprobs_unplaced']} log-prob records have token ids only: kept without char offsets "
                      "(sentence scoring needs them); pass --tokenizer to place the tokens in the text", highlight=False)
    for line in stats["examples"]:
        console.print(f"  rejected {clean(line)}", highlight=False)
    console.print(f"run {stats['run_id']}; see rejections with: potstill sql \"from raw.raw_rejections where run_id = '{stats['run_id']}'\"", highlight=False)


SHAPE_ALIASES = {"sharegpt": "chat", "messages": "chat", "conversations": "chat"}
PathArg = Annotated[str, typer.Argument(help="JSONL, Parquet or CSV file; a save_to_disk or Parquet shard folder; or hf://org/name\\[:config]\\[@split]")]
MapOpt = Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. --map problem=question --map reference_answer=answer")]
SourceOpt = Annotated[str | None, typer.Option(help="dataset name (default: file name); part of prompt_id")]
DomainOpt = Annotated[str | None, typer.Option(help="math|code for all rows (default: per row)")]
SplitOpt = Annotated[str, typer.Option(help="split for rows without a split column")]
FormatOpt = Annotated[list[str] | None, typer.Option("--format", help="file format jsonl|parquet|csv|hf|shards (default: from the path); for traces also a row shape chat|sharegpt|flat|generations (default: detected per row); repeat to give both")]
MaxRowOpt = Annotated[int, typer.Option(help="rows over this many bytes are rejected as too_large")]
TokenizerOpt = Annotated[str | None, typer.Option(help="tokenizer (local path or cached name) to place token ids in the text when the release has no token strings")]


@ingest_app.command("prompts")
def ingest_prompts(
    path: PathArg,
    map: MapOpt = None,
    source: SourceOpt = None,
    domain: DomainOpt = None,
    split: SplitOpt = "train",
    format: FormatOpt = None,
    max_row_bytes: MaxRowOpt = 1_000_000,
    warehouse: WarehouseOpt = None,
) -> None:
    """Ingest prompts (problem, reference answer, tests for code)."""
    _ingest("prompts", path, warehouse, format, source=source, domain=domain, split=split, mapping=_parse_map(map),
            max_row_bytes=max_row_bytes)


@ingest_app.command("traces")
def ingest_traces(
    path: PathArg,
    model: Annotated[str, typer.Option(help="the model that wrote the traces (stored as model_id)")],
    map: MapOpt = None,
    source: SourceOpt = None,
    domain: DomainOpt = None,
    split: SplitOpt = "train",
    format: FormatOpt = None,
    markers: Annotated[str | None, typer.Option(help="reasoning markers OPEN,CLOSE tried before <think> and <|begin_of_thought|>")] = None,
    verdict: Annotated[list[str] | None, typer.Option("--verdict", help="column with the source's correctness verdicts (bool, or a list per generation); default: correctness_*, correct, is_correct")] = None,
    logprob_model: Annotated[str | None, typer.Option(help="model the rows' token log-probs belong to (default: --model)")] = None,
    tokenizer: TokenizerOpt = None,
    max_row_bytes: MaxRowOpt = 1_000_000,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import a trace dataset: chat messages / ShareGPT conversations, problem + completion, or
    generations[] with per-generation verdicts; reasoning split at <think>, <|begin_of_thought|> or --markers."""
    _ingest("traces", path, warehouse, format, model=model, source=source, domain=domain, split=split,
            mapping=_parse_map(map), max_row_bytes=max_row_bytes, markers=markers, verdict_fields=verdict or (),
            logprob_model=logprob_model, tokenizer=tokenizer)


@ingest_app.command("logprobs")
def ingest_logprobs(
    path: PathArg,
    model: Annotated[str, typer.Option(help="the model these log-probs belong to")],
    source: Annotated[str | None, typer.Option(help="only join traces of this dataset (default: any)")] = None,
    map: MapOpt = None,
    format: FormatOpt = None,
    markers: Annotated[str | None, typer.Option(help="reasoning markers the release's text uses, as for ingest traces")] = None,
    tokenizer: TokenizerOpt = None,
    max_row_bytes: Annotated[int, typer.Option(help="rows over this many bytes are rejected as too_large")] = 50_000_000,
    warehouse: WarehouseOpt = None,
) -> None:
    """Join a released token log-prob file (sample_uuid, token_ids[], logprobs[]) to traces imported
    with the same sample_uuid, into raw.raw_token_logprobs (no teacher re-run needed)."""
    _ingest("logprobs", path, warehouse, format, model=model, source=source, mapping=_parse_map(map), markers=markers,
            tokenizer=tokenizer, max_row_bytes=max_row_bytes)


def _safe_text(value: object) -> str:
    """Text for the terminal: control characters (ANSI escapes, bells, CR) shown escaped, never interpreted."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else ascii(c)[1:-1] for c in text)


def _print_frame(df, fmt: str) -> None:
    from rich.text import Text

    if fmt == "csv":
        out = df.write_csv()
        sys.stdout.write(_safe_text(out) if sys.stdout.isatty() else out)
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str, ensure_ascii=False) + "\n")
    elif fmt == "table":
        table = Table(show_lines=False)
        for name in df.columns:
            table.add_column(Text(_safe_text(name)), overflow="fold")
        for row in df.iter_rows():
            table.add_row(*[Text("" if v is None else _safe_text(v)) for v in row])  # Text: data is never markup
        console.print(table)
        console.print(f"({df.height} row{'s' if df.height != 1 else ''})")
    else:
        raise CliError(f"--format {fmt!r}: choose table, csv or json")


READ_ONLY_STATEMENTS = ("SELECT", "EXPLAIN", "PRAGMA")


def read_only_query(path: str, query: str, allow_file_reads: bool = False, snapshot: int | None = None):
    """Run `query` on a read-only connection that cannot attach, install, load, copy or (by default) read files.

    DuckDB's own switches do the work (`enable_external_access=false`, locked configuration, no
    extension autoload); statements other than SELECT / EXPLAIN / PRAGMA are refused before they run.
    With `allow_file_reads`, table functions may read files (read_csv, read_parquet, ...) but the
    statement rule still refuses COPY, EXPORT, ATTACH, INSTALL, LOAD and SET. A warehouse another
    process holds is retried for a bounded time, then refused in one line naming the holder.
    On a lake, file access stays on only for the lake's own data folder (its Parquet files);
    `snapshot` reads the lake as of that snapshot (`--at`).
    """
    import duckdb
    import polars as pl

    from warehouse import Warehouse

    config = {"enable_external_access": bool(allow_file_reads), "autoinstall_known_extensions": False,
              "autoload_known_extensions": False, "allow_community_extensions": False, "lock_configuration": True}
    wh = Warehouse(path, read_only=True, config=config, snapshot=snapshot)
    if not wh.exists():
        raise CliError(f"no warehouse at {path}; run `potstill init` or point --warehouse elsewhere")
    with wh.connect() as con:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise CliError(f"sql: {str(exc).splitlines()[0]}") from exc
        if not statements:
            raise CliError("sql: empty query")
        for statement in statements:
            kind = statement.type.name
            if kind not in READ_ONLY_STATEMENTS:
                raise CliError(f"potstill sql is read-only: {kind} statements are refused (only {', '.join(READ_ONLY_STATEMENTS)})")
        try:
            result = None
            for statement in statements:
                result = con.sql(statement.query)
            return pl.DataFrame() if result is None else pl.from_arrow(result.to_arrow_table())
        except duckdb.PermissionException as exc:
            hint = "" if allow_file_reads else "; pass --allow-file-reads to let a query read files"
            raise CliError(f"potstill sql cannot touch files: {str(exc).splitlines()[0]}{hint}") from exc
        except duckdb.Error as exc:
            raise CliError(f"sql: {str(exc).splitlines()[0]}") from exc


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="a SQL query over the warehouse (SELECT, EXPLAIN or PRAGMA)")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table|csv|json")] = "table",
    allow_file_reads: Annotated[bool, typer.Option("--allow-file-reads", help="let table functions read files (read_csv, read_parquet, ...); still no writes")] = False,
    at: Annotated[str | None, typer.Option("--at", help="read as of a published dataset version: NAME@VERSION (lake)")] = None,
    attach_sql: Annotated[bool, typer.Option("--attach-sql", help="print the statements that open the warehouse in the duckdb CLI or a notebook")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run a SQL query against the warehouse, read-only: no writes, no ATTACH/COPY/INSTALL/LOAD, no file reads."""
    from warehouse.datasets import snapshot_of

    if format not in ("table", "csv", "json"):
        raise CliError(f"--format {format!r}: choose table, csv or json")
    path = _wh_path(warehouse)
    snapshot = None
    if at is not None:
        version, snapshot = snapshot_of(_warehouse(warehouse, read_only=True), at)
        err_console.print(f"as of {version.dataset_name}@{version.version}: lake snapshot {snapshot}", highlight=False)
    if attach_sql:
        print("\n".join(_warehouse(warehouse, read_only=True).attach_statements(read_only=True, snapshot=snapshot)))
        if query is None:
            return
    if query is None:
        raise CliError("give a query, e.g. potstill sql \"from raw.raw_traces limit 5\" (or --attach-sql)")
    _print_frame(read_only_query(path, query, allow_file_reads, snapshot=snapshot), format)


@app.command()
def maintain(
    keep_days: Annotated[float, typer.Option(help="expire snapshots older than this (published datasets' are kept)")] = 7.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Lake upkeep: merge small files, expire unreferenced snapshots, report sizes."""
    from flows.maintain import maintain_flow

    summary = maintain_flow.fn(warehouse=_wh_path(warehouse), keep_days=keep_days)
    console.print(json.dumps(summary))


@app.command("migrate-warehouse")
def migrate_warehouse(
    source: Annotated[Path, typer.Argument(help="a single-file warehouse (*.duckdb) to copy")],
    warehouse: WarehouseOpt = None,
) -> None:
    """Copy a single-file DuckDB warehouse into a lake (the target: --warehouse or the default lake)."""
    from warehouse.migrate import copy_into_lake

    counts = copy_into_lake(source, _wh_path(warehouse))
    total = sum(counts.values())
    console.print(f"copied {total} rows in {len(counts)} tables from {source} into {_wh_path(warehouse)}")
    for table, n in counts.items():
        if n:
            console.print(f"  {table}: {n}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output", metavar="")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Row counts per table and the most recent runs (runs whose process died are marked abandoned first)."""
    from warehouse import Warehouse
    from warehouse.db import WarehouseError

    probe = Warehouse(_wh_path(warehouse), busy_timeout_s=1.0, writer_timeout_s=5.0)
    try:
        if probe.exists():  # a folder, a file or a PostgreSQL catalog alike
            probe.ensure()  # migrates, then marks abandoned runs
    except WarehouseError:
        pass  # another process is writing (or the catalog is unreachable): show what is there
    wh = _warehouse(warehouse, read_only=True)
    tables = wh.run_file("cli/tables")["name"].to_list()
    counts = {name: wh.count_rows(name) for name in tables}
    runs = wh.run_file("cli/recent_runs")
    curate_runs = wh.run_file("cli/curate_runs")
    if as_json:
        print(json.dumps({"warehouse": wh.path, "tables": counts, "curate_runs": curate_runs.to_dicts(),
                          "recent_runs": runs.to_dicts()}, default=str))
        return
    table = Table(title=f"warehouse {_safe(wh.path)}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print("[bold]curate runs[/] (potstill report RUN_ID, potstill view RUN_ID)")
    _print_frame(curate_runs, "table")
    console.print("[bold]recent stage runs[/]")
    _print_frame(runs, "table")


def _parse_sets(pairs: list[str] | None) -> dict[str, object]:
    import yaml

    params: dict[str, object] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CliError(f"--set {pair!r}: expected KEY=VALUE (VALUE is YAML: 3, true, [a, b], {{k: v}})")
        key, value = pair.split("=", 1)
        params[key.strip()] = yaml.safe_load(value)
    return params


def _print_result(result: dict) -> None:
    for key, value in result.items():
        if key in ("stages", "report"):
            continue
        console.print(f"{key}: {value}")


@app.command("run")
def run_stage(
    stage: Annotated[str, typer.Argument(help="curate | ingest | generate | verify | dedup | score | divergence | select | publish | finetune | evaluate, or an analysis: provenance-analysis | teacher-comparison | opd-export | experiment")],
    recipe: Annotated[Path | None, typer.Option(help="recipe YAML (default for curate: deployments/recipes/toy.yaml); a stage takes its section")] = None,
    set: Annotated[list[str] | None, typer.Option("--set", help="override a stage parameter: KEY=VALUE (YAML value); for curate STAGE.KEY=VALUE")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run one stage (or `curate`, all of them) as a Prefect flow on what the warehouse holds."""
    from flows.recipe import load_recipe, resolve_repo_paths, stage_flow, validate_stage_params

    if stage == "curate":
        from flows.curate import curate

        recipe_path, overrides = _checked_recipe(recipe, set)
        result = _with_progress(curate, recipe=recipe_path,
                                warehouse=_wh_path(warehouse) if (warehouse or STATE["warehouse"]) else None,
                                overrides=overrides)
        _print_curate(result)
        return
    spec = load_recipe(recipe) if recipe else None
    params = {**(spec.stage_params(stage) if spec else {}), **_parse_sets(set)}
    provenance = params.pop("provenance", None)  # the recipe's typed section, validated with the recipe
    params = resolve_repo_paths(validate_stage_params(stage, params, where=f"run {stage}"))
    if provenance is not None:
        params["provenance"] = provenance
    wh = warehouse or STATE["warehouse"] or (spec.warehouse if spec else None)
    flow_obj = stage_flow(stage)
    _quiet_flow_errors()
    result = flow_obj(warehouse=_wh_path(wh), **params)
    _print_result(result if isinstance(result, dict) else {"result": result})


class _NoFlowErrors:
    """A console-handler filter: Prefect's ERROR records of failed flow and task runs (tracebacks)
    are left to the API log; the CLI prints the error as one line itself (`--debug` keeps them)."""

    PREFIXES = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine")

    def filter(self, record) -> bool:
        return record.levelno < 40 or not record.name.startswith(self.PREFIXES)


def _quiet_flow_errors() -> None:
    import logging

    if STATE["debug"]:
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NoFlowErrors) for f in handler.filters):
            handler.addFilter(_NoFlowErrors())


def _last_seconds(wh_path: str | None, recipe_name: str) -> float | None:
    """Wall seconds of the last completed curate run of this recipe in the warehouse (for an ETA)."""
    if not wh_path:
        return None
    try:
        from warehouse import Warehouse

        wh = Warehouse(wh_path, read_only=True)
        if not wh.exists():
            return None
        return wh.scalar_file("cli/last_curate_seconds", {"recipe": recipe_name})
    except Exception:  # noqa: BLE001 - an ETA is optional: a busy or old warehouse gives none
        return None


def _with_progress(curate_flow, *, recipe: str, warehouse: str | None, overrides: dict | None) -> dict:
    """Run curate with a live line (stage, elapsed, ETA from the last run of the same recipe) and one
    printed line per finished stage (rows in / out / rejected, seconds)."""
    import time

    from rich.progress import SpinnerColumn, TimeRemainingColumn

    import flows.curate as curate_module
    from flows.recipe import load_recipe

    _quiet_flow_errors()
    name = load_recipe(recipe).name
    previous = _last_seconds(warehouse or _wh_path(), name)
    started = time.monotonic()
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    if previous:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task(f"curate {_safe(name)}: starting Prefect", total=previous or None)

        def hook(event: str, stage: str, result: dict) -> None:
            elapsed = time.monotonic() - started
            if event == "start":
                progress.update(bar, description=f"curate {_safe(name)}: [bold]{_safe(stage)}[/]",
                                completed=min(elapsed, previous or elapsed))
                return
            if result.get("skipped"):
                progress.console.print(f"  {_safe(stage):<20} skipped")
                return
            counts = ", ".join(f"{label} {result[key]:,}" for key, label in
                               (("n_in", "in"), ("n_out", "out"), ("n_rejected", "rejected"))
                               if isinstance(result.get(key), int))
            seconds = result.get("seconds")
            progress.console.print(f"  [green]done[/] {_safe(stage):<20} {counts or ''}"
                                   + (f"  ({seconds:,.1f} s)" if isinstance(seconds, int | float) else ""),
                                   highlight=False)

        curate_module.PROGRESS_HOOK = hook
        try:
            return curate_flow(recipe=recipe, warehouse=warehouse, overrides=overrides)
        finally:
            curate_module.PROGRESS_HOOK = None


def _checked_recipe(recipe: Path | None, sets: list[str] | None) -> tuple[str, dict | None]:
    """Load and validate the recipe and its overrides before Prefect starts: a bad file, key or
    value is one line (RecipeError), not a failed flow run with a traceback."""
    from flows.recipe import DEFAULT_RECIPE, apply_overrides, load_recipe

    path = str(recipe or DEFAULT_RECIPE)
    if recipe is not None and not Path(path).is_file():
        raise CliError(f"--recipe {path}: no such file")
    overrides = _parse_sets(sets) or None
    apply_overrides(load_recipe(path), overrides)
    return path, overrides


def _print_curate(result: dict) -> None:
    """The end of a curate run: the Outcome, the reconciling funnel as a table, where things are."""
    from flows.report import build_report

    report = build_report(_warehouse(result["warehouse"], read_only=True), result["run_id"])
    console.print("[bold]Outcome[/]")
    for line in report.outcome:
        style = "bold red" if "TRUNCATED" in line else ""
        console.print(f"  {_safe(line)}", style=style, highlight=False)
    seconds = {s.get("run_id"): s.get("seconds") for s in result.get("stages", []) if isinstance(s.get("run_id"), str)}
    table = Table(title="Funnel (n_in = n_out + n_rejected; reasons sum to n_rejected)", title_justify="left")
    for name, justify in (("stage", "left"), ("unit", "left"), ("n_in", "right"), ("n_out", "right"), ("n_rejected", "right"),
                          ("reasons", "left"), ("reconciles", "center"), ("s", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    for row in report.funnel.iter_rows(named=True):
        ok = {True: "[green]yes[/]", False: "[red]NO[/]", None: "?"}[row["reconciles"]]
        secs = seconds.get(row["run_id"])
        table.add_row(*[_safe(row["stage"]), _safe(row["unit"])],
                      *[f"{row[k]:,}" if isinstance(row[k], int) else "" for k in ("n_in", "n_out", "n_rejected")],
                      _safe(row["reasons"]), ok, f"{secs:,.1f}" if isinstance(secs, int | float) else "")
    console.print(table)
    report_path = Path(result["report"])
    console.print(f"report: {_safe(report_path)} (and {_safe(report_path.with_suffix('.html').name)})", highlight=False)
    published = [s["dataset"] for s in result.get("stages", []) if s.get("stage") == "publish" and s.get("dataset")]
    for name in [report_path.stem, *(p.replace("@", "-v") for p in published)]:
        viewer = report_path.parent / f"{name}.traces.html"
        if viewer.is_file():
            console.print(f"trace viewer: {_safe(viewer)}", highlight=False)
    console.print(f"warehouse: {_safe(result['warehouse'])}  (query it: potstill --warehouse {_safe(result['warehouse'])}"
                  " sql \"select * from curated.cur_datasets\")", highlight=False)


@app.command()
def demo(
    recipe: Annotated[Path | None, typer.Option(help="recipe YAML (default: the toy world)")] = None,
    set: Annotated[list[str] | None, typer.Option("--set", help="override a recipe parameter: STAGE.KEY=VALUE (YAML value), e.g. generate.limit=1000")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run the toy-world recipe end to end on CPU: curate → publish → fine-tune → evaluate."""
    from flows.curate import curate

    recipe_path, overrides = _checked_recipe(recipe, set)
    result = _with_progress(curate, recipe=recipe_path, warehouse=_wh_path(warehouse), overrides=overrides)
    _print_curate(result)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="a run id from `potstill status` (a curate run gives the whole funnel)")],
    format: Annotated[str, typer.Option("--format", "-f", help="md|html")] = "md",
    out: Annotated[Path | None, typer.Option(help="output file (default: report-<run_id>.<format>)")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write a run's report (funnel, summary, plots) as markdown or HTML."""
    from flows.report import build_report, write_report

    path = write_report(build_report(_warehouse(warehouse, read_only=True), run_id), out or Path(f"report-{run_id}.{format}"), format)
    console.print(f"report written to {path}")


@app.command()
def view(
    target: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME, NAME@latest) of a published dataset, or a curate run id")],
    out: Annotated[Path | None, typer.Option(help="output HTML file (default: traces-<target>.html)")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write the provenance trace viewer: one self-contained HTML file, sentences coloured by class."""
    from flows.report import dataset_viewer, run_viewer, write_viewer

    wh = _warehouse(warehouse, read_only=True)
    is_run = not wh.run_file("report/run", {"run_id": target}).is_empty()
    page = run_viewer(wh, target) if is_run else dataset_viewer(wh, target)
    path = write_viewer(page, out or Path(f"traces-{target.replace('@', '-v').replace('/', '_')}.html"))
    console.print(f"trace viewer written to {_safe(str(path))}  (open it in a browser; no server needed)")


@app.command()
def export(
    spec: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@VERSION of a published dataset")],
    format: Annotated[str, typer.Option("--format", "-f", help="parquet|jsonl|hf")] = "parquet",
    out: Annotated[Path, typer.Option(help="output folder (a dataset card README.md is written beside the data)")] = Path("export"),
    warehouse: WarehouseOpt = None,
) -> None:
    """Export a published dataset version for your own trainer, with a dataset card."""
    from warehouse.export import export_dataset

    path = export_dataset(_warehouse(warehouse, read_only=True), spec, format, out)
    console.print(f"exported {spec} to {path}")


@app.command()
def lineage(
    trace_id: Annotated[str, typer.Argument(help="a trace_id (see curated.cur_traces or an export)")],
    warehouse: WarehouseOpt = None,
) -> None:
    """Everything about one trace: source, teacher, sampling, verdicts, dedup, scores, datasets, training runs."""
    from warehouse.lineage import lineage as trace_lineage

    print(json.dumps(trace_lineage(_warehouse(warehouse, read_only=True), trace_id), indent=2, default=str))


experiment_app = typer.Typer(help="Experiments over curated data.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("compare-selections")
def compare_selections(
    preset: Annotated[str | None, typer.Option(help="quick: random vs provenance, seed 0, 300 training steps per arm, whole eval set, "
                                                    "no base arm (sized for 20 min on an idle 2-core CPU; the README gives the wall time "
                                                    "and load it was measured at); "
                                                    "paper: the paper's 8 arms x seeds 0,1,2 at the recipe's steps (meant for a GPU worker). "
                                                    "Options given explicitly win")] = None,
    arms: Annotated[str | None, typer.Option("--arms", "--policies", help="comma-separated selection policies; policy#N = the policy drawn "
                                                                      "with another selection seed (random#1: an A/A arm). Must include random "
                                                                      "(the reference). Default: the preset's, else random,provenance,longest,length_matched_random")] = None,
    budget: Annotated[int, typer.Option(help="rows per arm (or tokens with --budget-unit tokens), the same for every arm")] = 500,
    budget_unit: Annotated[str, typer.Option(help="traces, or tokens (token-matched arms)")] = "traces",
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds, e.g. 0,1,2: every arm runs once per seed; the seed drives "
                                                   "selection, training data order and initialisation, and evaluation sampling. Default: the preset's, else 0")] = None,
    recipe: Annotated[str, typer.Option(help="training recipe: a name under deployments/recipes/train_*.yaml or a path")] = "toy_ablation",
    max_steps: Annotated[int | None, typer.Option(help="training steps per arm (default: the preset's, else the recipe's train.max_steps)")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate on the first N problems only (default: the whole eval set)")] = None,
    oracle_pattern: Annotated[str | None, typer.Option(help="regex of the oracle arm (a planted label, e.g. the toy recipe's "
                                                            "select.oracle_pattern '→'); needed only with the oracle arm")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """One shared eligible pool; per seed and arm an equal-size dataset, a fine-tune of the same number of steps and an
    evaluation; per arm pass@1 with a 95% interval and a paired verdict against random. Unequal arms are refused."""
    from flows.experiment import experiment_flow
    from tasks.experiment.ablation import parse_seeds

    _show_flow_progress()
    result = experiment_flow(warehouse=_wh_path(warehouse), arms=[p.strip() for p in arms.split(",") if p.strip()] if arms else None,
                             budget=budget, budget_unit=budget_unit, seeds=parse_seeds(seeds) if seeds else None, preset=preset,
                             recipe=recipe, max_steps=max_steps, limit=limit, oracle_pattern=oracle_pattern)
    result = {k: v for k, v in result.items() if k != "summary"}
    _print_result(result)
    console.print(Path(result["markdown"]).read_text(), highlight=False)


@experiment_app.command("compare-methods")
def compare_methods(
    preset: Annotated[str | None, typer.Option(help="quick: sft, sft+redi, sft+opd, schedule; seed 0; 120 prompts; 300 optimiser steps per "
                                                    "arm (240 SFT + 60 REDI/OPD); whole eval set (sized for a 2-core CPU). paper: seeds 0,1,2, "
                                                    "400 prompts, the recipe's steps (GPU). Options given explicitly win")] = None,
    arms: Annotated[str | None, typer.Option(help="comma-separated training methods: sft (the reference), sft+redi, sft+opd, schedule")] = None,
    budget: Annotated[int | None, typer.Option(help="prompts per arm: one correct trace of the OPD teacher each (the SFT rows of every arm)")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds: every arm runs once per seed (positives drawn, training, "
                                                   "OPD rollouts, evaluation). Default: the preset's, else 0")] = None,
    recipe: Annotated[str, typer.Option(help="training recipe with train, redi and opd sections (name or path)")] = "methods_ablation",
    total_steps: Annotated[int | None, typer.Option(help="optimiser steps per arm, every stage counted (default: the preset's, else "
                                                         "the recipe's train.max_steps)")] = None,
    second_stage_steps: Annotated[int | None, typer.Option(help="of the total, the REDI / OPD stage's steps; SFT gets the rest "
                                                                "(default: the preset's, else a fifth)")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate on the first N problems only (default: the whole eval set)")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """The training methods as ablation arms: the same positives, the same total of optimiser steps per arm; per arm pass@1
    with a 95% interval and a paired verdict against plain sft. Unequal arms are refused."""
    from flows.experiment_methods import methods_experiment_flow
    from tasks.experiment.ablation import parse_seeds

    _show_flow_progress()
    result = methods_experiment_flow(warehouse=_wh_path(warehouse), arms=[a.strip() for a in arms.split(",") if a.strip()] if arms else None,
                                     budget=budget, seeds=parse_seeds(seeds) if seeds else None, preset=preset, recipe=recipe,
                                     total_steps=total_steps, second_stage_steps=second_stage_steps, limit=limit)
    result = {k: v for k, v in result.items() if k != "summary"}
    _print_result(result)
    console.print(Path(result["markdown"]).read_text(), highlight=False)


def _show_flow_progress() -> None:
    """Experiments run for many minutes: print their flow runs' INFO lines (arm, rows, steps, training
    progress, evaluation) as they come, instead of the CLI's usual WARNING-only Prefect output."""
    import logging

    logger = logging.getLogger("prefect.flow_runs")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


def main() -> None:
    """Entry point: one clear line per error, tracebacks only with --debug."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # the ephemeral API's cold start takes 7-12 s on 2 cores, longer under load: wait for it
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the CLI shows its own progress: no per-model / per-dataset tqdm bars in between
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    debug = "--debug" in sys.argv
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    if not debug:  # a failed run's exception is printed once below, as one line; its traceback only with --debug
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(lambda record: not record.exc_info)
    try:
        app(prog_name="potstill", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # the message may quote data: escape markup ("[/x]") and control characters (ANSI escapes)
        err_console.print(f"[red]error:[/] {_safe(message)}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
