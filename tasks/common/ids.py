"""Content-addressed ids and config fingerprints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from tasks.common.text import normalize_text


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hex sha256 of the JSON encoding of `parts` (sorted keys), cut to `length` characters.

    >>> stable_hash("a", 1) == stable_hash("a", 1)
    True
    """
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def prompt_id_for(problem_text: str, source: str) -> str:
    """The prompt key: hash of the normalised problem text and its source."""
    return "p_" + stable_hash("prompt", normalize_text(problem_text), source)


def imported_trace_id(prompt_id: str, model_id: str, completion_text: str) -> str:
    return "t_" + stable_hash("imported", prompt_id, model_id, completion_text)


def _payload(config: Any) -> Any:
    """A dataclass / pydantic model / plain value as plain data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):  # fields marked fingerprint=False are where/how, not what
        out = dataclasses.asdict(config)
        return {f.name: out[f.name] for f in dataclasses.fields(config) if f.metadata.get("fingerprint", True)}
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    return config


def config_fingerprint(config: Any) -> str:
    """A short fingerprint of a dataclass / pydantic model / dict config (12 hex characters)."""
    return stable_hash(type(config).__name__, _payload(config), length=12)


def config_json(config: Any) -> str:
    return json.dumps(_payload(config), sort_keys=True, default=str)
