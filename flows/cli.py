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

WarehouseOpt = Annotated[str | None, typer.Option("--warehouse", "-w", help="DuckDB file (default: $POTSTILL_WAREHOUSE or ~/.local/share/potstill/warehouse.duckdb)")]


class CliError(RuntimeError):
    """A user-facing error: printed as one line."""


@app.callback()
def _root(
    warehouse: WarehouseOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False,
) -> None:
    STATE["warehouse"] = warehouse
    STATE["debug"] = debug


def _wh_path(local: str | None = None) -> str:
    from warehouse import default_path

    return str(local or STATE["warehouse"] or default_path())


def _warehouse(local: str | None = None, read_only: bool = False):
    from warehouse import Warehouse

    path = _wh_path(local)
    if read_only and not Path(path).exists():
        raise CliError(f"no warehouse at {path}; run `potstill init` or point --warehouse elsewhere")
    return Warehouse(path, read_only=read_only)


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


def _print_frame(df, fmt: str) -> None:
    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str, ensure_ascii=False) + "\n")
    elif fmt == "table":
        table = Table(show_lines=False)
        for name in df.columns:
            table.add_column(name, overflow="fold")
        for row in df.iter_rows():
            table.add_row(*["" if v is None else str(v) for v in row])
        console.print(table)
        console.print(f"({df.height} row{'s' if df.height != 1 else ''})")
    else:
        raise CliError(f"--format {fmt!r}: choose table, csv or json")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="a SQL query over the warehouse")],
    format: Annotated[str, typer.Option("--format", "-f", help="table|csv|json")] = "table",
    warehouse: WarehouseOpt = None,
) -> None:
    """Run a SQL query against the warehouse (read-only)."""
    if format not in ("table", "csv", "json"):
        raise CliError(f"--format {format!r}: choose table, csv or json")
    _print_frame(_warehouse(warehouse, read_only=True).query(query), format)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Row counts per table and the most recent runs."""
    wh = _warehouse(warehouse, read_only=True)
    tables = wh.run_file("cli/tables")["name"].to_list()
    counts = {name: wh.count_rows(name) for name in tables}
    runs = wh.run_file("cli/recent_runs")
    if as_json:
        print(json.dumps({"warehouse": wh.path, "tables": counts, "recent_runs": runs.to_dicts()}, default=str))
        return
    table = Table(title=f"warehouse {wh.path}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    console.print(table)
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

        result = curate(recipe=str(recipe) if recipe else str(load_recipe().path), warehouse=_wh_path(warehouse) if (warehouse or STATE["warehouse"]) else None,
                        overrides=_parse_sets(set) or None)
        _print_curate(result)
        return
    spec = load_recipe(recipe) if recipe else None
    params = {**(spec.stage_params(stage) if spec else {}), **_parse_sets(set)}
    provenance = params.pop("provenance", None)  # the recipe's typed section, validated with the recipe
    params = resolve_repo_paths(validate_stage_params(stage, params, where=f"run {stage}"))
    if provenance is not None:
        params["provenance"] = provenance
    wh = warehouse or STATE["warehouse"] or (spec.warehouse if spec else None)
    result = stage_flow(stage)(warehouse=_wh_path(wh), **params)
    _print_result(result if isinstance(result, dict) else {"result": result})


def _print_curate(result: dict) -> None:
    import polars as pl

    from flows.report import markdown_table

    rows = [{"stage": s.get("stage"), "n_in": s.get("n_in"), "n_out": s.get("n_out"), "n_rejected": s.get("n_rejected"),
             "seconds": s.get("seconds")} for s in result["stages"]]
    console.print(markdown_table(pl.DataFrame(rows, strict=False), max_rows=100))
    for s in result["stages"]:
        for key in ("accuracy_before", "accuracy_after", "dataset", "checkpoint_path"):
            if key in s:
                console.print(f"{s['stage']}.{key}: {s[key]}")
    console.print(f"report: {result['report']}")
    console.print(f"warehouse: {result['warehouse']}  (query it: potstill --warehouse {result['warehouse']} sql \"from curated.cur_datasets\")")


@app.command()
def demo(
    recipe: Annotated[Path | None, typer.Option(help="recipe YAML (default: the toy world)")] = None,
    set: Annotated[list[str] | None, typer.Option("--set", help="override a recipe parameter: STAGE.KEY=VALUE (YAML value), e.g. generate.limit=1000")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run the toy-world recipe end to end on CPU: curate → publish → fine-tune → evaluate."""
    from flows.curate import curate
    from flows.recipe import DEFAULT_RECIPE

    result = curate(recipe=str(recipe or DEFAULT_RECIPE), warehouse=_wh_path(warehouse), overrides=_parse_sets(set) or None)
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
    preset: Annotated[str | None, typer.Option(help="quick: random vs provenance, seed 0, 300 training steps per arm, whole eval set "
                                                    "(meant to fit 20 min on an idle 2-core CPU; not yet timed end to end); "
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
    warehouse: WarehouseOpt = None,
) -> None:
    """One shared eligible pool; per seed and arm an equal-size dataset, a fine-tune of the same number of steps and an
    evaluation; per arm pass@1 with a 95% interval and a paired verdict against random. Unequal arms are refused."""
    from flows.experiment import experiment_flow
    from tasks.experiment.ablation import parse_seeds

    result = experiment_flow(warehouse=_wh_path(warehouse), arms=[p.strip() for p in arms.split(",") if p.strip()] if arms else None,
                             budget=budget, budget_unit=budget_unit, seeds=parse_seeds(seeds) if seeds else None, preset=preset,
                             recipe=recipe, max_steps=max_steps, limit=limit)
    result = {k: v for k, v in result.items() if k != "summary"}
    _print_result(result)
    console.print(Path(result["markdown"]).read_text(), highlight=False)


def main() -> None:
    """Entry point: one clear line per error, tracebacks only with --debug."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # the ephemeral API's cold start takes 7-12 s on 2 cores, longer under load: wait for it
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    debug = "--debug" in sys.argv
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
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
        err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
