"""Read a YAML file that must hold a mapping, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The mapping in `path`; raises `error` naming the file when it is not valid YAML or not a mapping.

    `what` names the kind of file in the message ("a recipe", "a training recipe").
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: {what} is a YAML mapping")
    return raw
