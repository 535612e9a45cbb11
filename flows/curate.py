"""The curate flow: ingest → generate → verify → dedup + decontaminate → score → divergence →
select → validate → publish → (finetune + evaluate), driven by one recipe.

Every stage works only on what the warehouse holds and it has not yet processed, so re-running a
recipe after a crash, or with more prompts, does only the missing work.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.recipe import DEFAULT_RECIPE, Recipe, load_recipe, resolve_path, stage_flow
from warehouse import Warehouse, default_path
from warehouse.runs import finish_run, start_run


def _run_name() -> str:
    params = flow_run.parameters or {}
    return f"curate-{Path(str(params.get('recipe') or DEFAULT_RECIPE)).stem}"


def _stage(recipe: Recipe, stage: str, warehouse: str, log, **extra: Any) -> dict:
    """Run one stage flow as a subflow with the recipe's parameters for it."""
    if stage in recipe.skip:
        log.info("stage %s: skipped by the recipe", stage)
        return {"stage": stage, "skipped": True}
    params = {**recipe.stage_params(stage), **extra}
    started = time.monotonic()
    result = stage_flow(stage)(warehouse=warehouse, **params) or {}
    result = dict(result) if isinstance(result, dict) else {"result": str(result)}
    result.setdefault("stage", stage)
    result["seconds"] = round(time.monotonic() - started, 2)
    log.info("stage %s: %s", stage, {k: v for k, v in result.items() if k in ("n_in", "n_out", "n_rejected", "seconds")})
    return result


@flow(name="curate", flow_run_name=_run_name)
def curate(recipe: str = str(DEFAULT_RECIPE), warehouse: str | None = None) -> dict:
    """Run a recipe end to end and return per-stage stats (also stored on the curate run)."""
    log = get_run_logger()
    spec = load_recipe(recipe)
    wh_path = str(warehouse or spec.warehouse or default_path())
    wh = Warehouse(wh_path)
    run_id = start_run(wh, flow_name="curate", stage="curate", config=spec.model_dump(mode="json"))
    stages: list[dict] = []
    try:
        for item in spec.inputs.prompts:
            stages.append(_ingest(item, "prompts", wh_path))
        for item in spec.inputs.traces:
            stages.append(_ingest(item, "traces", wh_path))
        stages.append(_stage(spec, "generate", wh_path, log))
        stages.append(_stage(spec, "verify", wh_path, log))
        stages.append(_stage(spec, "dedup", wh_path, log))
        stages.append(_stage(spec, "score", wh_path, log))
        stages.append(_stage(spec, "divergence", wh_path, log))
        selection = _stage(spec, "select", wh_path, log)
        stages.append(selection)
        stages.append(_stage(spec, "publish", wh_path, log, **_publish_inputs(spec, selection, run_id)))
        published = stages[-1]
        if "finetune" in spec.stages and "finetune" not in spec.skip:
            stages.append(_stage(spec, "finetune", wh_path, log, dataset=published.get("dataset", published.get("dataset_spec"))))
        if "evaluate" in spec.stages and "evaluate" not in spec.skip:
            stages.append(_stage(spec, "evaluate", wh_path, log, **_evaluate_inputs(stages)))
    except BaseException as exc:
        finish_run(wh, run_id, status="failed", stats={"recipe": spec.name, "stages": stages}, error_message=str(exc)[:2000])
        raise
    _link_children(wh, run_id, stages)
    finish_run(wh, run_id, n_in=stages[0].get("read") if stages else None,
               n_out=published.get("n_rows"), stats={"recipe": spec.name, "fingerprint": spec.fingerprint(), "stages": stages})
    from flows.report import publish_report

    report = publish_report(wh, run_id)
    return {"run_id": run_id, "recipe": spec.name, "warehouse": wh_path, "stages": stages, "report": report}


def _ingest(item, kind: str, wh_path: str) -> dict:
    from flows.ingest import ingest_flow

    result = ingest_flow(path=resolve_path(item.path), kind=kind, warehouse=wh_path, source=item.source,
                         model=item.model, domain=item.domain, split=item.split, mapping=item.map or None)
    return {**result, "stage": f"ingest_{kind}", "n_in": result["read"], "n_out": result["accepted"], "n_rejected": result["rejected"]}


def _publish_inputs(spec: Recipe, selection: dict, run_id: str) -> dict:
    """What publish needs from selection, unless the recipe set it."""
    params = spec.stage_params("publish")
    extra = {}
    if "selection_run_id" not in params and selection.get("run_id"):
        extra["selection_run_id"] = selection["run_id"]
    return extra


def _evaluate_inputs(stages: list[dict]) -> dict:
    finetune = next((s for s in stages if s.get("stage") == "finetune"), None)
    if finetune and finetune.get("checkpoint_path"):
        return {"extra_models": [finetune["checkpoint_path"]]}
    return {}


def _link_children(wh: Warehouse, run_id: str, stages: list[dict]) -> None:
    child_ids = [s["run_id"] for s in stages if isinstance(s.get("run_id"), str)]
    if child_ids:
        wh.execute("update meta.runs set parent_run_id = ? where run_id in (select unnest(?::varchar[]))", [run_id, child_ids])


def summarize(result: dict) -> str:
    return json.dumps(result, indent=2, default=str)
