"""Recipes: versioned YAML under deployments/recipes/, validated before anything runs.

A recipe names its inputs, the `provenance:` facts divergence and selection share (student,
sentence splitter, beta: a typed `ProvenanceConfig`), and, per stage, the parameters of that
stage's flow. Each stage section is checked against the stage flow's own signature, so an unknown
key or a bad value fails with a message naming the recipe file, the section and the key.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model, model_validator

from tasks.common.ids import config_fingerprint
from tasks.common.yamlfile import read_yaml_mapping
from tasks.divergence.provenance import ProvenanceConfig

REPO = Path(__file__).resolve().parent.parent
RECIPES_DIR = REPO / "deployments" / "recipes"
DEFAULT_RECIPE = RECIPES_DIR / "toy.yaml"

# stage name -> (module, flow function); order is the curate order.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("flows.ingest", "ingest_flow"),
    "generate": ("flows.generate", "generate_flow"),
    "verify": ("flows.verify", "verify_flow"),
    "dedup": ("flows.dedup", "dedup_flow"),
    "score": ("flows.score", "score_flow"),
    "divergence": ("flows.divergence", "divergence_flow"),
    "select": ("flows.select", "select_flow"),
    "publish": ("flows.publish", "publish_flow"),
    "finetune": ("flows.finetune", "finetune_flow"),
    "evaluate": ("flows.evaluate", "evaluate_flow"),
}
# Analyses `potstill run NAME` also runs (not part of curate).
ANALYSES: dict[str, tuple[str, str]] = {
    "provenance-analysis": ("flows.divergence", "provenance_analysis_flow"),
    "teacher-comparison": ("flows.divergence", "teacher_comparison_flow"),
    "opd-export": ("flows.divergence", "opd_export_flow"),
    "experiment": ("flows.experiment", "experiment_flow"),
}
# Stages that run on the cpu pool (and on a Ray cluster when a recipe sets task_runner: ray).
CPU_STAGES = ("ingest", "verify", "dedup", "score", "select", "publish")
# Parameters the curate flow passes itself; a recipe does not set them per stage.
MANAGED = {"warehouse", "provenance"}
# Stages that read the recipe's `provenance:` section.
PROVENANCE_STAGES = ("divergence", "select")


class RecipeError(ValueError):
    """A recipe file is missing, malformed or invalid; the message names file, section and key."""


def stage_flow(stage: str):
    """The Prefect flow object of a stage (imported lazily: stages pull heavy dependencies)."""
    known = {**STAGES, **ANALYSES}
    if stage not in known:
        raise RecipeError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}; analyses: {', '.join(ANALYSES)}")
    module, name = known[stage]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise RecipeError(f"stage {stage!r} is not available ({module}.{name}: {exc})") from exc


@cache
def _section_model(stage: str) -> type[BaseModel]:
    fn = stage_flow(stage)
    raw_fn = getattr(fn, "fn", fn)
    sig = inspect.signature(raw_fn)
    hints = typing.get_type_hints(raw_fn, include_extras=True)  # keep Annotated[..., Field(ge=1)] constraints
    fields: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if name in MANAGED or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    return create_model(f"{stage.title()}Section", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)


class InputFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="file or datasets folder, relative to the recipe's repo root or absolute")
    source: str | None = Field(default=None, description="dataset name (default: file name)")
    split: str = "train"
    domain: str | None = None
    map: dict[str, str] = Field(default_factory=dict, description="potstill field -> input column")
    model: str | None = Field(default=None, description="for trace datasets: the model that wrote them")


class Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[InputFile] = Field(default_factory=list)
    traces: list[InputFile] = Field(default_factory=list)


class CardInfo(BaseModel):
    """What an exported dataset's card says about its terms (Hugging Face dataset-card metadata)."""

    model_config = ConfigDict(extra="forbid")
    license: str = Field(default="other", description="SPDX-style id of the data's license, e.g. apache-2.0, cc-by-4.0")
    language: list[str] = Field(default_factory=lambda: ["en"], description="ISO 639-1 codes")
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"], description="Hub task categories")


class Recipe(BaseModel):
    """A curate recipe. `stages` maps a stage name to its flow's parameters (validated per flow)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="recipe name; used in run names")
    version: int = Field(ge=1, description="bump when the recipe's meaning changes")
    description: str = ""
    warehouse: str | None = Field(default=None, description="DuckDB file; default $POTSTILL_WAREHOUSE")
    inputs: Inputs = Field(default_factory=Inputs)
    provenance: ProvenanceConfig = Field(
        default_factory=ProvenanceConfig, description="student, sentence splitter and beta, for divergence and select"
    )
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict)
    skip: list[str] = Field(default_factory=list, description="stages not to run")
    task_runner: Literal["default", "ray"] = Field(default="default", description="ray: CPU stages' shards run on a Ray cluster (prefect-ray)")
    ray_address: str | None = Field(default=None, description="Ray cluster address (e.g. ray://head:10001); default: a local cluster")
    card: CardInfo = Field(default_factory=CardInfo, description="license, language and task categories of exports")
    path: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _resolve_student(self) -> Recipe:
        self.provenance = resolved_provenance(self.provenance)
        return self

    def fingerprint(self) -> str:
        """Of what the recipe says, not where the repo is checked out (a resolved student is repo-relative)."""
        data = self.model_dump(mode="json", exclude={"path", "warehouse", "card"})  # the card's terms do not change the data
        student = data["provenance"]["student"]
        if student and Path(student).is_relative_to(REPO):
            data["provenance"]["student"] = str(Path(student).relative_to(REPO))
        return config_fingerprint(data)

    def stage_params(self, stage: str) -> dict[str, Any]:
        """The stage flow's parameters: its section, plus the typed `provenance` for the stages that read it."""
        params = dict(self.stages.get(stage, {}))
        if stage in PROVENANCE_STAGES:
            params["provenance"] = self.provenance
        return params


def resolved_provenance(provenance: ProvenanceConfig) -> ProvenanceConfig:
    """The student is a typed path, resolved once: a folder under the repo root becomes absolute."""
    if provenance.student and resolve_repo_paths(provenance.student) != provenance.student:
        return replace(provenance, student=resolve_repo_paths(provenance.student))
    return provenance


def resolve_path(value: str, base: Path = REPO) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))


def resolve_repo_paths(value: Any, base: Path = REPO) -> Any:
    """Relative paths in stage parameters that exist under the repo root become absolute, so a
    recipe works from any working directory (toyworld/models/student → /…/toyworld/models/student)."""
    if isinstance(value, dict):
        return {k: resolve_repo_paths(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_repo_paths(v, base) for v in value]
    if isinstance(value, str) and value and "://" not in value and not Path(value).is_absolute() and "\n" not in value:
        candidate = base / value
        try:
            if candidate.exists() and not Path(value).exists():
                return str(candidate)
        except OSError:
            return value
    return value


def load_recipe(path: str | Path | None = None, *, check_stages: bool = True) -> Recipe:
    """Read and validate a recipe (default: deployments/recipes/toy.yaml)."""
    path = Path(path) if path else DEFAULT_RECIPE
    if not path.exists():
        raise RecipeError(f"{path}: no such recipe file")
    raw = read_yaml_mapping(path, RecipeError, "a recipe")
    try:
        recipe = Recipe.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise RecipeError(f"{path}: {_first_error(exc)}") from exc
    for stage in [*recipe.stages, *recipe.skip]:
        if stage not in STAGES:
            raise RecipeError(f"{path}: stages.{stage}: unknown stage; stages: {', '.join(STAGES)}")
    if check_stages:
        for stage, params in recipe.stages.items():
            validate_stage_params(stage, params, where=f"{path}: stages.{stage}")
    return recipe


def apply_overrides(recipe: Recipe, overrides: dict[str, Any] | None) -> Recipe:
    """The recipe with `STAGE.KEY: value` overrides (`--set generate.limit=600`) applied and re-validated.

    The overridden recipe has its own fingerprint, so runs and datasets record what really ran.
    """
    if not overrides:
        return recipe
    stages = {name: dict(params) for name, params in recipe.stages.items()}
    provenance = TypeAdapter(ProvenanceConfig).dump_python(recipe.provenance)
    for key, value in overrides.items():
        stage, _, name = key.partition(".")
        if stage == "provenance" and name:
            *parents, leaf = name.split(".")
            section = provenance
            for part in parents:
                section = section.setdefault(part, {})
            section[leaf] = value
            continue
        if not name:
            raise RecipeError(f"--set {key}=...: a curate override is STAGE.KEY (e.g. generate.limit=600)")
        if stage not in STAGES:
            raise RecipeError(f"--set {key}=...: unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        stages.setdefault(stage, {})[name] = value
    for stage, params in stages.items():
        validate_stage_params(stage, params, where=f"{recipe.path} with --set: stages.{stage}")
    try:
        typed = resolved_provenance(TypeAdapter(ProvenanceConfig).validate_python(provenance))
    except ValidationError as exc:
        raise RecipeError(f"{recipe.path} with --set: provenance.{_first_error(exc)}") from exc
    return recipe.model_copy(update={"stages": stages, "provenance": typed})


def validate_stage_params(stage: str, params: dict[str, Any], *, where: str) -> dict[str, Any]:
    model = _section_model(stage)
    try:
        return model.model_validate(params).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise RecipeError(f"{where}: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown key {loc!r}"
    return f"{loc}: {err['msg']} (got {err.get('input')!r})"[:500]
