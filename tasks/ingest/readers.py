"""Streaming readers: every input row comes out as a `RawRecord`, parsed or with a reason code.

Formats: JSONL, Parquet, CSV and a Hugging Face `datasets` folder saved with `save_to_disk`.
Nothing is held whole in memory: files are read line by line or batch by batch.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "parquet", "csv", "hf")
DEFAULT_MAX_ROW_BYTES = 1_000_000


class IngestError(RuntimeError):
    """A whole input cannot be read (missing file, unknown format, corrupt container)."""


@dataclass(frozen=True)
class RawRecord:
    source_ref: str  # file:line (JSONL/CSV) or file:row (Parquet/HF)
    row: dict[str, Any] | None  # parsed row, None when rejected while reading
    raw: bytes | str | None  # the row as read, kept for rejections
    reason_code: str | None = None
    detail: str | None = None


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        raise IngestError(f"{path}: a folder must be a Hugging Face dataset saved with save_to_disk")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise IngestError(f"{path}: unknown input format {suffix!r}; use .jsonl, .parquet, .csv or a datasets folder")


def iter_records(path: str | Path, fmt: str | None = None, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRecord]:
    """Yield one `RawRecord` per input row, in file order."""
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    readers = {"jsonl": _iter_jsonl, "parquet": _iter_parquet, "csv": _iter_csv, "hf": _iter_hf}
    if fmt not in readers:
        raise IngestError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    yield from readers[fmt](path, max_row_bytes)


def _iter_jsonl(path: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            ref = f"{path}:{number}"
            body = line.rstrip(b"\r\n")
            if len(body) > max_row_bytes:
                yield RawRecord(ref, None, body, "too_large", f"row is {len(body)} bytes, limit {max_row_bytes}")
                continue
            if not body.strip():
                yield RawRecord(ref, None, body, "empty_row", "blank line")
                continue
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRecord(ref, None, body, "invalid_utf8", f"byte {exc.start}: {exc.reason}")
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRecord(ref, None, text, "invalid_json", f"column {exc.colno}: {exc.msg}")
                continue
            if not isinstance(row, dict):
                yield RawRecord(ref, None, text, "invalid_json", f"expected a JSON object, got {type(row).__name__}")
                continue
            bad = _surrogate_field(row)
            if bad is not None:  # a JSON escape such as \ud800 decodes to a lone surrogate: not valid Unicode text
                yield RawRecord(ref, None, text, "invalid_utf8", f"field {bad!r} holds a lone surrogate escape")
                continue
            yield RawRecord(ref, row, text)


def _surrogate_field(value: Any, name: str = "") -> str | None:
    """The first field (dotted path) whose text is not encodable as UTF-8, else None."""
    if isinstance(value, str):
        return None if not _has_surrogates(value) else (name or "(row)")
    if isinstance(value, dict):
        for key, item in value.items():
            found = _surrogate_field(item, f"{name}.{key}" if name else str(key))
            if found is not None or _has_surrogates(str(key)):
                return found or str(key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_field(item, f"{name}[{i}]")
            if found is not None:
                return found
    return None


def _row_size_check(ref: str, row: dict[str, Any], max_row_bytes: int) -> RawRecord:
    text = json.dumps(row, ensure_ascii=False, default=str)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_row_bytes:
        return RawRecord(ref, None, text, "too_large", f"row is {size} bytes, limit {max_row_bytes}")
    return RawRecord(ref, row, text)


def _iter_parquet(path: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        batches = parquet.iter_batches(batch_size=1024)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield _row_size_check(f"{path}:{number}", row, max_row_bytes)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: cannot read Parquet ({exc}); the file is corrupt or truncated") from exc


def _iter_csv(path: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        for row in reader:
            ref = f"{path}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                yield RawRecord(ref, None, json.dumps(row, default=str), "malformed_row",
                                f"expected {len(header)} columns {header}")
                continue
            bad = [k for k, v in row.items() if _has_surrogates(v)]
            if bad:
                raw = {k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for k, v in row.items()}
                yield RawRecord(ref, None, json.dumps(raw), "invalid_utf8", f"field {bad[0]!r} is not valid UTF-8")
                continue
            yield _row_size_check(ref, dict(row), max_row_bytes)


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _iter_hf(path: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise IngestError("reading a datasets folder needs `pip install datasets`") from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise IngestError(f"{path}: cannot load the datasets folder ({exc})") from exc
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for split, dataset in splits:
        prefix = f"{path}[{split}]" if split else str(path)
        for number, row in enumerate(dataset, start=1):
            if split and "split" not in row:
                row = {**row, "split": split}
            yield _row_size_check(f"{prefix}:{number}", row, max_row_bytes)
