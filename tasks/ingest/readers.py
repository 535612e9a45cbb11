"""Streaming readers: every input row comes out as a `RawRecord`, parsed or with a reason code.

Inputs: a JSONL, Parquet or CSV file; a Hugging Face `datasets` folder saved with `save_to_disk`; a
folder of Parquet/JSONL/CSV shards (a downloaded Hub snapshot: `data/train-00000-of-00002.parquet`);
or `hf://org/name[:config][@split]`, streamed through `datasets.load_dataset` (needs the network).
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

FORMATS = ("jsonl", "parquet", "csv", "hf", "shards")
DEFAULT_MAX_ROW_BYTES = 1_000_000
HUB_PREFIX = "hf://"
SHARD_SUFFIXES = (".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".csv", ".tsv")
SPLIT_NAMES = ("train", "test", "validation", "valid", "dev", "eval")
MAX_DEPTH = 64  # deeper rows are rejected as too_deep; published datasets nest fewer than 6 levels


class IngestError(RuntimeError):
    """A whole input cannot be read (missing file, unknown format, corrupt container)."""


@dataclass(frozen=True)
class RawRecord:
    source_ref: str  # file:line (JSONL/CSV) or file:row (Parquet/HF)
    row: dict[str, Any] | None  # parsed row, None when rejected while reading
    raw: bytes | str | None  # the row as read, kept for rejections
    reason_code: str | None = None
    detail: str | None = None


def detect_format(path: str | Path) -> str:
    if str(path).startswith(HUB_PREFIX):
        return "hub"
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if _shard_files(path):
            return "shards"
        raise IngestError(f"{path}: a folder must be a datasets folder saved with save_to_disk, or hold .parquet/.jsonl/.csv shards")
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
    if str(path).startswith(HUB_PREFIX):
        yield from _iter_hub(str(path), max_row_bytes)
        return
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise IngestError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    yield from READERS[fmt](path, max_row_bytes)


def _iter_jsonl(path: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            ref = f"{path}:{number}"
            body = line.rstrip(b"\r\n")
            if number == 1 and body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
                body = body[3:]
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
            except RecursionError:
                yield RawRecord(ref, None, text, "too_deep", too_deep_detail(_deep_key_in_text(text)))
                continue
            if not isinstance(row, dict):
                yield RawRecord(ref, None, text, "invalid_json", f"expected a JSON object, got {type(row).__name__}")
                continue
            if nesting_depth(row) > MAX_DEPTH:
                yield RawRecord(ref, None, text, "too_deep", too_deep_detail(deep_key(row)))
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


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and objects nest (1 for a flat object), counted without recursion; stops past `limit`.

    >>> nesting_depth({"a": [{"b": 1}]})
    3
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def deep_key(row: dict[str, Any]) -> str | None:
    """The first top-level field that nests deeper than MAX_DEPTH."""
    return next((str(k) for k, v in row.items() if nesting_depth(v, MAX_DEPTH - 1) > MAX_DEPTH - 1), None)


def too_deep_detail(key: str | None) -> str:
    where = f"field {key!r}" if key is not None else "the row"
    return f"{where} nests more than {MAX_DEPTH} levels deep"


def _deep_key_in_text(text: str) -> str | None:
    """The top-level key under which JSON text first nests deeper than MAX_DEPTH (a scan, no parse)."""
    depth, in_string, escaped, start, last, key = 0, False, False, 0, None, None
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string, last = False, text[start + 1 : i]
        elif char == '"':
            in_string, start = True, i
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return key
        elif char in "]}":
            depth -= 1
        elif char == ":" and depth == 1:
            key = last
    return None


def _row_size_check(ref: str, row: dict[str, Any], max_row_bytes: int) -> RawRecord:
    if nesting_depth(row) > MAX_DEPTH:
        return RawRecord(ref, None, repr(row)[:10_000], "too_deep", too_deep_detail(deep_key(row)))
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
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
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
    except Exception as exc:  # datasets raises many types for a bad folder
        raise IngestError(f"{path}: cannot load the datasets folder ({exc})") from exc
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for split, dataset in splits:
        prefix = f"{path}[{split}]" if split else str(path)
        for number, row in enumerate(dataset, start=1):
            if split and "split" not in row:
                row = {**row, "split": split}
            yield _row_size_check(f"{prefix}:{number}", row, max_row_bytes)


def _shard_files(folder: Path) -> list[Path]:
    """The data shards of a folder, one format family only (Parquet, else JSONL, else JSON, else CSV),
    so a snapshot's `dataset_infos.json` or README is never read as data."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SHARD_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    for family in ((".parquet", ".pq"), (".jsonl", ".ndjson"), (".json",), (".csv", ".tsv")):
        chosen = sorted(p for p in files if p.suffix.lower() in family)
        if chosen:
            return chosen
    return []


def shard_split(shard: Path, folder: Path) -> str | None:
    """The split a Hub shard belongs to, from its name or folder (`data/train-00000-of-00002.parquet` → train).

    >>> shard_split(Path("d/data/test-00000-of-00001.parquet"), Path("d"))
    'test'
    """
    candidates = [shard.stem.split("-")[0].split("_")[0], *(p for p in reversed(shard.relative_to(folder).parent.parts))]
    return next((c for c in candidates if c.lower() in SPLIT_NAMES), None)


def _iter_shards(folder: Path, max_row_bytes: int) -> Iterator[RawRecord]:
    """Every shard of a folder in name order, each through its own reader; rows get the shard's split."""
    for shard in _shard_files(folder):
        split = shard_split(shard, folder)
        for record in READERS[detect_format(shard)](shard, max_row_bytes):
            if split and record.row is not None and "split" not in record.row:
                record = RawRecord(record.source_ref, {**record.row, "split": split}, record.raw)
            yield record


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """`hf://org/name[:config][@split]` → (name, config, split).

    >>> parse_hub_spec("hf://open-r1/OpenR1-Math-220k:default@train")
    ('open-r1/OpenR1-Math-220k', 'default', 'train')
    """
    body = spec[len(HUB_PREFIX):]
    body, _, split = body.partition("@")
    name, _, config = body.partition(":")
    if name.count("/") != 1 or not all(name.split("/")):
        raise IngestError(f"{spec}: expected hf://org/name[:config][@split]")
    return name, config or None, split or None


def _iter_hub(spec: str, max_row_bytes: int) -> Iterator[RawRecord]:
    """Stream a dataset from the Hugging Face Hub (rows read lazily, nothing downloaded whole)."""
    import datasets

    name, config, split = parse_hub_spec(spec)
    try:
        loaded = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as exc:  # datasets raises many types: offline, unknown dataset, gated, bad config
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise IngestError(
            f"{spec}: cannot load from the Hugging Face Hub ({type(exc).__name__}: {reason}); offline, save it "
            f"where you are online with datasets.load_dataset(...).save_to_disk(DIR) and ingest DIR"
        ) from exc
    splits = loaded.items() if isinstance(loaded, (datasets.IterableDatasetDict, datasets.DatasetDict)) else [(split, loaded)]
    for split_name, dataset in splits:
        prefix = f"{spec}[{split_name}]" if split_name and not split else spec
        rows = iter(dataset)
        number = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except Exception as exc:  # a dropped connection mid-stream
                raise IngestError(f"{prefix}: reading row {number + 1} from the Hub failed ({type(exc).__name__}: {exc})"[:500]) from exc
            number += 1
            if split_name and "split" not in row:
                row = {**row, "split": split_name}
            yield _row_size_check(f"{prefix}:{number}", row, max_row_bytes)


READERS = {"jsonl": _iter_jsonl, "parquet": _iter_parquet, "csv": _iter_csv, "hf": _iter_hf, "shards": _iter_shards}
