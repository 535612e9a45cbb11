"""Recipes: validated before anything runs, with errors naming the file, section and key."""

from __future__ import annotations

import pytest

from flows.recipe import DEFAULT_RECIPE, RecipeError, load_recipe

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
