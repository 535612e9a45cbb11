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

from flows.common import task_runner_for
from flows.recipe import (
    CPU_STAGES,
    DEFAULT_RECIPE,
    Recipe,
    apply_overrides,
    load_recipe,
    resolve_path,
    resolve_repo_paths,
    stage_flow,
)
from warehouse import Warehouse, default_path
from warehouse.runs import stage_run

# The CLI's live progress: called as PROGRESS_HOOK(event, stage, result), event "start" or "done";
# None in deployments (the Prefect UI shows the subflow runs).
PROGRESS_HOOK = None


def _progress(event: str, stage: str, result: dict | None = None) -> None:
    if PROGRESS_HOOK is not None:
        PROGRESS_HOOK(event, stage, result or {})


def _run_name() -> str:
    params = flow_run.parameters or {}
    return f"curate-{Path(str(params.get('recipe') or DEFAULT_RECIPE)).stem}"


def _stage(recipe: Recipe, stage: str, warehouse: str, log, **extra: Any) -> dict:
    """Run one stage flow as a subflow with the recipe's parameters for it."""
    if stage in recipe.skip:
        log.info("stage %s: skipped by the recipe", stage)
        return {"stage": stage, "skipped": True}
    params = {**resolve_repo_paths(recipe.stage_params(stage)), **extra}
    _progress("start", stage)
    started = time.monotonic()
    flow_obj = stage_flow(stage)
    runner = task_runner_for(recipe.task_runner, recipe.ray_address) if stage in CPU_STAGES else None
    if runner is not None:
        flow_obj = flow_obj.with_options(task_runner=runner)
    result = flow_obj(warehouse=warehouse, **params) or {}
    result = dict(result) if isinstance(result, dict) else {"result": str(result)}
    result.setdefault("stage", stage)
    result["seconds"] = round(time.monotonic() - started, 2)
    log.info("stage %s: %s", stage, {k: v for k, v in result.items() if k in ("n_in", "n_out", "n_rejected", "seconds")})
    _progress("done", stage, result)
    return result


@flow(name="curate", flow_run_name=_run_name)
def curate(recipe: str = str(DEFAULT_RECIPE), warehouse: str | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """Run a recipe end to end and return per-stage stats (also stored on the curate run).

    `overrides` maps `STAGE.KEY` to a value (`{"generate.limit": 600}`), applied over the recipe file.
    """
    log = get_run_logger()
    spec = apply_overrides(load_recipe(recipe), overrides)
    wh_path = str(warehouse or spec.warehouse or default_path())
    wh = Warehouse(wh_path)
    stages: list[dict] = []
    with stage_run(wh, "curate", spec.model_dump(mode="json")) as run:
        run_id, run.stats = run.run_id, {"recipe": spec.name, "stages": stages}
        try:
            for item in spec.inputs.prompts:
                stages += _checked(_ingest(item, "prompts", wh_path), wh_path, log)
            for item in spec.inputs.traces:
                stages += _checked(_ingest(item, "traces", wh_path), wh_path, log)
            stages += _checked(_stage(spec, "generate", wh_path, log), wh_path, log)
            stages += _checked(_stage(spec, "verify", wh_path, log), wh_path, log)
            stages.append(_stage(spec, "dedup", wh_path, log))
            stages.append(_stage(spec, "score", wh_path, log))
            stages += _checked(_stage(spec, "divergence", wh_path, log), wh_path, log)
            selection = _stage(spec, "select", wh_path, log, publish=False)
            stages.append(_brief(selection))
            published = _publish(spec, wh_path, selection, stages, log)  # its contract gate validates the selection
            stages.append(published)
            stages.append(_finetune_and_evaluate(spec, wh_path, published, log))
        finally:
            _link_children(wh, run_id, stages)
        run.n_in, run.n_out = stages[0].get("n_in") if stages else None, published.get("n_rows")
        run.stats = {"recipe": spec.name, "fingerprint": spec.fingerprint(), "stages": stages}
    from flows.report import publish_report

    report = publish_report(wh, run_id)
    return {"run_id": run_id, "recipe": spec.name, "warehouse": wh_path, "stages": stages, "report": report}


def _brief(result: dict) -> dict:
    """A stage result without bulky payloads (the selected rows), for run stats and logs."""
    return {k: v for k, v in result.items() if k != "rows"}


def _checked(result: dict, wh_path: str, log) -> list[dict]:
    """A stage boundary: run the data contracts on the rows that stage run wrote (a blocking
    failure stops the curate run here, naming the expectation and example rows)."""
    if result.get("skipped") or not isinstance(result.get("run_id"), str):
        return [result]
    from flows.publish import validate_flow

    started = time.monotonic()
    _progress("start", f"validate:{result['stage']}")
    check = validate_flow(warehouse=wh_path, run_id=result["run_id"]) or {}
    check = {**check, "stage": f"validate:{result['stage']}", "seconds": round(time.monotonic() - started, 2)}
    _progress("done", check["stage"], check)
    log.info("contracts after %s: %s rows checked, %s blocking failures", result["stage"], check.get("n_in"),
             check.get("n_blocking_failures"))
    return [result, check]


def _publish(spec: Recipe, wh_path: str, selection: dict, stages: list[dict], log) -> dict:
    """Publish the selection as the next version of the recipe's dataset (identical content → same version)."""
    if "publish" in spec.skip or selection.get("skipped"):
        return {"stage": "publish", "skipped": True}
    rows = selection.get("rows")
    if rows is None or rows.height == 0:
        raise RuntimeError("the select stage produced no rows: nothing to publish (see the select run's rejections)")
    params = spec.stage_params("publish")
    dataset_name = params.pop("dataset_name", None) or spec.name
    sources = [s["run_id"] for s in stages if isinstance(s.get("run_id"), str)]
    return _stage(spec, "publish", wh_path, log, dataset_name=dataset_name, selection=rows.to_dicts(),
                  policy=selection["params"]["policy"], params=_jsonable(selection["params"]),
                  config_fingerprint=spec.fingerprint(), source_run_ids=sources, **params)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _finetune_and_evaluate(spec: Recipe, wh_path: str, published: dict, log) -> dict:
    """The publish trigger: fine-tune the student on the new version, then evaluate base vs fine-tuned."""
    if "finetune" in spec.skip or "finetune" not in spec.stages or published.get("skipped"):
        return {"stage": "finetune", "skipped": True}
    params = spec.stage_params("finetune")
    if "recipe" in params and params["recipe"] is None:  # `--set finetune.recipe=null`: publish only
        log.info("finetune: skipped (finetune.recipe is null)")
        return {"stage": "finetune", "skipped": True, "reason": "finetune.recipe is null"}
    from flows.finetune import on_publish

    started = time.monotonic()
    _progress("start", "finetune+evaluate")
    result = on_publish(dataset_name=published["dataset"].split("@")[0], version=published["version"],
                        recipe=params.get("recipe"), warehouse=wh_path) or {}
    out = {"stage": "finetune+evaluate", "dataset": result.get("dataset"), "checkpoint_path": result.get("checkpoint_path"),
           "seconds": round(time.monotonic() - started, 2),
           "child_run_ids": [r for r in ((result.get("finetune") or {}).get("run_id"), (result.get("evaluate") or {}).get("run_id"))
                             if isinstance(r, str)]}
    evaluation = result.get("evaluate") or {}
    for entry in evaluation.get("models", evaluation.get("evals", [])) or []:
        metrics = entry.get("metrics") or []
        overall = next((m for m in metrics if m.get("domain") in ("all", "overall")), metrics[0] if metrics else {})
        label = "accuracy_after" if entry.get("model_id") == result.get("checkpoint_path") else "accuracy_before"
        out[label] = overall.get("pass_at_1")
    log.info("finetune+evaluate: %s", out)
    _progress("done", "finetune+evaluate", out)
    return out


def _ingest(item, kind: str, wh_path: str) -> dict:
    from flows.ingest import ingest_flow

    _progress("start", f"ingest_{kind}")
    result = ingest_flow(path=resolve_path(item.path), kind=kind, warehouse=wh_path, source=item.source,
                         model=item.model, domain=item.domain, split=item.split, mapping=item.map or None)
    out = {**result, "stage": f"ingest_{kind}", "n_in": result["read"], "n_out": result["accepted"], "n_rejected": result["rejected"]}
    _progress("done", out["stage"], out)
    return out


def _link_children(wh: Warehouse, run_id: str, stages: list[dict]) -> None:
    child_ids = [s["run_id"] for s in stages if isinstance(s.get("run_id"), str)]
    child_ids += [r for s in stages for r in s.get("child_run_ids", [])]
    if child_ids:
        wh.execute_file("curate/link_children", {"run_id": run_id, "child_ids": child_ids})


