"""Recipes: validated before anything runs, with errors naming the file, section and key."""

from __future__ import annotations

import pytest

from flows.recipe import DEFAULT_RECIPE, RecipeError, apply_overrides, load_recipe

BASE = """
name: tiny
version: 1
inputs:
  prompts:
    - path: toyworld/data/train.jsonl
"""


def _write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_default_recipe_is_valid_and_fingerprinted():
    recipe = load_recipe(DEFAULT_RECIPE)
    assert recipe.name and recipe.version >= 1
    assert len(recipe.fingerprint()) == 12
    assert recipe.fingerprint() == load_recipe(DEFAULT_RECIPE).fingerprint()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "colour: blue\n", "unknown key 'colour'"),
        (BASE.replace("version: 1", "version: 0"), "version"),
        (BASE.replace("name: tiny", "name: Not Valid"), "name"),
        (BASE + "stages:\n  teleport: {}\n", "stages.teleport: unknown stage"),
        (BASE + "stages:\n  score:\n    frobnicate: 3\n", "stages.score: unknown key 'frobnicate'"),
        (BASE + "stages:\n  score:\n    shard_size: lots\n", "stages.score: shard_size"),
        (BASE + "inputs:\n  prompts: [{pathh: x}]\n", "pathh"),
        ("name: [unclosed\n", "not valid YAML"),
        ("- a list\n", "a recipe is a YAML mapping"),
    ],
)
def test_invalid_recipes_are_refused_clearly(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_fingerprint_changes_with_meaning(tmp_path):
    a = load_recipe(_write(tmp_path, BASE))
    b = load_recipe(_write(tmp_path, BASE + "stages:\n  score:\n    shard_size: 5000\n"))
    assert a.fingerprint() != b.fingerprint()


def test_missing_recipe(tmp_path):
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "none.yaml")


def test_overrides_apply_per_stage_and_change_the_fingerprint():
    base = load_recipe()
    more = apply_overrides(base, {"generate.limit": 1000, "select.budget": 900})
    assert more.stage_params("generate")["limit"] == 1000
    assert more.stage_params("select")["budget"] == 900
    assert more.stage_params("generate")["teachers"] == base.stage_params("generate")["teachers"]
    assert more.fingerprint() != base.fingerprint()
    assert apply_overrides(base, None) is base
    assert base.stage_params("generate")["limit"] != 1000  # the loaded recipe is not modified


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"limit": 3}, "STAGE.KEY"),
        ({"nosuch.limit": 3}, "unknown stage 'nosuch'"),
        ({"generate.nosuch": 3}, "nosuch"),
        ({"select.budget": "many"}, "budget"),
    ],
)
def test_bad_overrides_are_refused_clearly(overrides, message):
    with pytest.raises(RecipeError, match=message):
        apply_overrides(load_recipe(), overrides)


def test_a_null_finetune_recipe_publishes_without_fine_tuning():
    """`--set finetune.recipe=null` stops the publish trigger before any training starts."""
    import logging

    from flows.curate import _finetune_and_evaluate

    spec = apply_overrides(load_recipe(), {"finetune.recipe": None})
    out = _finetune_and_evaluate(spec, "/nonexistent/lake", {"dataset": "toy-provenance@1", "version": 1},
                                 logging.getLogger("test"))
    assert out == {"stage": "finetune", "skipped": True, "reason": "finetune.recipe is null"}
