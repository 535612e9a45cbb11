"""Training recipes: versioned YAML under deployments/recipes/train_*.yaml.

A recipe names the base student, the training config (`tasks.train.config.TrainConfig`), the
evaluation that follows (`tasks.evaluate.config.EvalConfig` + eval set) and what to do when a
dataset version is published. Unknown keys fail with the file, section and key.

>>> recipe = load_train_recipe("toy")            # deployments/recipes/train_toy.yaml   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.common.ids import config_fingerprint
from tasks.common.yamlfile import read_yaml_mapping
from tasks.evaluate.config import EvalConfig, EvalError
from tasks.train.config import RECIPES_DIR, REPO, TrainConfig, TrainError
from tasks.train.methods import OPDConfig, RediConfig, check_method, opd_config, redi_config, stage_train_config

DEFAULT_TRAIN_RECIPE = RECIPES_DIR / "train_toy.yaml"


class OnPublish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finetune: bool = Field(default=False, description="fine-tune when a dataset version is published")
    evaluate: bool = Field(default=True, description="then evaluate base and fine-tuned student on the eval set")
    datasets: list[str] = Field(default_factory=list, description="dataset names this applies to; empty = all")
    finetune_deployment: str | None = Field(default=None, description="'flow/deployment' to run fine-tuning on (e.g. the gpu pool); in-process when absent or not deployed")
    evaluate_deployment: str | None = Field(default=None, description="'flow/deployment' for evaluation; in-process when absent or not deployed")
    deployment_timeout_s: float = Field(default=6 * 3600, gt=0, description="how long to wait for a deployment's run (no worker on its pool → it fails after this, saying so)")


class EvalSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    eval_set: str = Field(default="toyworld/data/eval.jsonl", description="JSONL/Parquet eval set, relative to the repo root or absolute")


class TrainRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: int = Field(ge=1)
    description: str = ""
    base_model: str = Field(description="local folder (relative to the repo root or absolute) or hub id")
    output_root: str | None = Field(default=None, description="where checkpoints go; default: next to the warehouse file")
    method: str = Field(default="sft", description="training method: sft | sft+redi | sft+opd | schedule (tasks.train.methods)")
    train: dict[str, Any] = Field(default_factory=dict)
    redi: dict[str, Any] = Field(default_factory=dict, description="REDI stage (method sft+redi): alpha, train overrides")
    opd: dict[str, Any] = Field(default_factory=dict, description="OPD stage (method sft+opd): teacher, clip, max_tokens, rollouts, train overrides")
    evaluate: EvalSection = Field(default_factory=EvalSection)
    on_publish: OnPublish = Field(default_factory=OnPublish)
    path: str | None = Field(default=None, exclude=True)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.train, where=f"{self.path}: train")

    def redi_config(self) -> RediConfig:
        return redi_config(self.redi, where=f"{self.path}: redi")

    def opd_config(self) -> OPDConfig:
        return opd_config(self.opd, where=f"{self.path}: opd")

    def stage_config(self, stage: str) -> TrainConfig:
        """The train config of one stage: `train`, with the redi/opd section's `train` overrides for those stages."""
        base = self.train_config()
        overrides = {"redi": self.redi_config().train, "opd": self.opd_config().train}.get(stage, {})
        return stage_train_config(base, overrides, where=f"{self.path}: {stage}.train") if overrides else base

    def eval_config(self) -> EvalConfig:
        params = self.evaluate.model_dump(exclude={"eval_set"})
        return EvalConfig.from_dict(params, where=f"{self.path}: evaluate")

    def eval_set_path(self) -> str:
        return resolve_model_or_path(self.evaluate.eval_set)

    def resolved_base_model(self) -> str:
        return resolve_model_or_path(self.base_model)

    def fingerprint(self) -> str:
        return config_fingerprint(self.model_dump(mode="json"))

    def applies_to(self, dataset_name: str) -> bool:
        return not self.on_publish.datasets or dataset_name in self.on_publish.datasets


def resolve_model_or_path(value: str) -> str:
    """A path relative to the repo root when it exists there, else the value (a hub id or absolute path)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = REPO / path
    return str(candidate) if candidate.exists() else value


def recipe_path(recipe: str | Path | None) -> Path:
    """`None` → train_toy.yaml; a bare name `x` → deployments/recipes/train_x.yaml; else the path."""
    if recipe is None:
        return DEFAULT_TRAIN_RECIPE
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        return path if path.is_absolute() or path.exists() else REPO / path
    return RECIPES_DIR / f"train_{recipe}.yaml"


def load_train_recipe(recipe: str | Path | None = None) -> TrainRecipe:
    """Read and validate a training recipe; every config section is checked now, not mid-run."""
    path = recipe_path(recipe)
    if not path.is_file():
        raise TrainError(f"{path}: no such training recipe (recipes live in {RECIPES_DIR}/train_*.yaml)")
    raw = read_yaml_mapping(path, TrainError, "a training recipe")
    try:
        recipe_obj = TrainRecipe.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise TrainError(f"{path}: {where}: {err['msg']}") from exc
    try:
        recipe_obj.train_config()
        recipe_obj.eval_config()
        check_method(recipe_obj.method, where=f"{path}: method")
        recipe_obj.stage_config("redi")
        recipe_obj.stage_config("opd")
        if recipe_obj.method == "sft+opd" and not recipe_obj.opd_config().teacher:
            raise TrainError(f"{path}: opd.teacher: method sft+opd needs the teacher that wrote the SFT data (its folder or hub id)")
    except EvalError as exc:
        raise TrainError(str(exc)) from exc
    return recipe_obj
