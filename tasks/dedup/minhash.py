"""Near-duplicate detection: MinHash signatures (rensa) + LSH banding + exact Jaccard verification.

Pipeline (docs/methods.md#deduplication-and-decontamination): shingle the normalised text (5-word shingles), sign every document
with 128 MinHash permutations (rensa, in Rust), band the signatures so that pairs with Jaccard
around the threshold share a bucket, verify every candidate pair with the *exact* Jaccard of
the shingle sets, and join verified pairs with union-find.

Shingles are hashed, not joined into strings: each token gets a stable 64-bit hash (blake2b,
cached), a shingle's hash combines its k token hashes (numpy, a whole shard at once), and rensa
signs the shard's flat hash buffer in one call. Exact Jaccard compares these 64-bit shingle
hashes (collisions are ~1e-19 per pair: equal to the Jaccard of the shingle strings). The representative of a cluster is
its best-ranked member (first ingested, then lowest id), so results are deterministic.

Memory is bounded: `NearDupIndex.add` takes documents shard by shard and keeps only their
signatures (num_perm * 4 bytes each); texts are fetched again, in batches, only for the
candidate pairs that need verifying.

>>> idx = NearDupIndex(MinhashConfig(shingle_size=2))
>>> idx.add(["a", "b", "c"], ["the cat sat on the mat", "the cat sat on the mat too", "dogs bark"])
>>> res = idx.resolve(lambda ids: dict(zip(["a", "b", "c"], ["the cat sat on the mat", "the cat sat on the mat too", "dogs bark"])))
>>> res.rows.filter(res.rows["item_id"] == "b")["cluster_id"][0]
'a'
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.common.text import normalize_text
from tasks.dedup.formula import formula_key, numbers
from tasks.dedup.unionfind import UnionFind

_TOKEN = re.compile(r"\w+|[^\w\s]")
_FNV_PRIME = np.uint64(0x100000001B3)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio odd constant: position-sensitive combine
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finalizer constants
_MIX2 = np.uint64(0x94D049BB133111EB)


class DedupError(ValueError):
    """A dedup input or config is invalid; the message names the field."""


try:  # rensa is a hard dependency of this stage; say how to get it
    import rensa as _rensa
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise DedupError("near-duplicate detection needs rensa: pip install 'rensa>=0.5'") from exc


@dataclass(frozen=True)
class MinhashConfig:
    """MinHash LSH knobs; defaults from docs/methods.md#deduplication-and-decontamination (5-gram shingles, 128 permutations, Jaccard 0.8)."""

    shingle_size: int = field(default=5, metadata={"help": "n of the n-gram shingles (docs/methods.md#deduplication-and-decontamination: 5)"})
    shingle_unit: str = field(
        default="word",
        metadata={"help": "'word' (tokens: words and single symbols) or 'char' (characters of the normalised text)"},
    )
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations (docs/methods.md#deduplication-and-decontamination: ~128)"})
    threshold: float = field(default=0.8, metadata={"help": "exact Jaccard at or above which two items are near duplicates"})
    num_bands: int | None = field(
        default=None,
        metadata={"help": "LSH bands; None = chosen to minimise 0.02*false positives + 0.98*false negatives around threshold"},
    )
    seed: int = field(default=42, metadata={"help": "MinHash seed (fixed: results are deterministic)"})
    max_bucket_size: int = field(
        default=64,
        metadata={"help": "buckets larger than this are linked as a chain instead of all pairs (bounds candidate count)"},
    )
    verify_batch_pairs: int = field(
        default=20_000, metadata={"help": "candidate pairs verified per batch (bounds the texts held at once)"}
    )
    require_equal_numbers: bool = field(
        default=True,
        metadata={"help": "a verified pair must also have the same multiset of numbers (problems differing in a number differ)"},
    )
    formula_match: bool = field(
        default=False,
        metadata={"help": "also join short formula prompts with an identical formula (tasks/dedup/formula.py); for prompts"},
    )
    formula_max_prose_words: int = field(
        default=12, metadata={"help": "a formula prompt has at most this many words around its formula"}
    )

    def __post_init__(self) -> None:
        if self.shingle_size < 1:
            raise DedupError(f"MinhashConfig.shingle_size must be >= 1, got {self.shingle_size}")
        if self.shingle_unit not in ("word", "char"):
            raise DedupError(f"MinhashConfig.shingle_unit must be 'word' or 'char', got {self.shingle_unit!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise DedupError(f"MinhashConfig.threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 2:
            raise DedupError(f"MinhashConfig.num_perm must be >= 2, got {self.num_perm}")
        if self.num_bands is not None and not 1 <= self.num_bands <= self.num_perm:
            raise DedupError(f"MinhashConfig.num_bands must be in [1, num_perm], got {self.num_bands}")

    def __str__(self) -> str:
        return f"minhash-{config_fingerprint(self)}"

    def band_params(self) -> tuple[int, int]:
        """(bands, rows per band)."""
        if self.num_bands is not None:
            return self.num_bands, self.num_perm // self.num_bands
        return optimal_bands(self.threshold, self.num_perm)


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.02, fn_weight: float = 0.98) -> tuple[int, int]:
    """Bands b and rows r (b*r <= num_perm) minimising weighted false-positive/negative mass.

    Same criterion as datasketch's `_optimal_param`; recall is weighted up because every
    candidate is verified by exact Jaccard afterwards (false positives cost time, not precision).

    At 0.8 / 128 permutations this gives 17 bands of 7 rows: a pair with Jaccard 0.8 becomes a
    candidate with probability 0.98, one with Jaccard 0.5 with probability 0.13.

    >>> optimal_bands(0.8, 128)
    (17, 7)
    """
    s_lo = np.linspace(0.0, threshold, 200)
    s_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - s_lo**r) ** b, s_lo)
            fn = np.trapezoid((1 - s_hi**r) ** b, s_hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err - 1e-12:
                best, best_err = (b, r), err
    return best


def tokens(text: str) -> list[str]:
    """Casefolded NFKC tokens: runs of word characters, and each other symbol on its own.

    >>> tokens("Compute 7+5*3!")
    ['compute', '7', '+', '5', '*', '3', '!']
    """
    return _TOKEN.findall(normalize_text(text or "", casefold=True))


def shingles(text: str, cfg: MinhashConfig) -> set[str]:
    """The shingle set of a text; a text shorter than one shingle is a single shingle; empty -> empty set."""
    k = cfg.shingle_size
    if cfg.shingle_unit == "char":
        norm = normalize_text(text or "", casefold=True)
        if not norm:
            return set()
        return {norm[i : i + k] for i in range(max(1, len(norm) - k + 1))}
    toks = tokens(text)
    if not toks:
        return set()
    if len(toks) <= k:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1)}


@functools.lru_cache(maxsize=1 << 20)
def unit_hash(unit: str) -> int:
    """Stable 64-bit hash of one token or character (blake2b; the same in every process)."""
    return int.from_bytes(hashlib.blake2b(unit.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _units(text: str | None, cfg: MinhashConfig) -> list[str]:
    if cfg.shingle_unit == "char":
        return list(normalize_text(text or "", casefold=True))
    return tokens(text or "")


# ASCII texts take a vectorised path (polars, whole shard at once) that gives exactly `tokens()` /
# `normalize_text()`: NFKC is the identity on ASCII, casefold is lowercase, and these classes are
# Python's `\s` / `\w` restricted to ASCII (Python's `\s` includes the separators \x1c-\x1f).
_ASCII_WS = "\t\n\x0b\x0c\r\x1c-\x1f "
_ASCII_TOKEN = f"[a-z0-9_]+|[^a-z0-9_{_ASCII_WS}]"


def unit_rows(texts: Sequence[str | None], cfg: MinhashConfig) -> pl.Series:
    """One list of units (tokens or characters, as `_units`) per text, as a polars List[String] series.

    ASCII texts are tokenised by polars in one pass; the rare others by the Python reference path.

    >>> unit_rows(["Compute 7+5!", None, "Café"], MinhashConfig()).to_list()
    [['compute', '7', '+', '5', '!'], [], ['café']]
    """
    ser = pl.Series("t", texts, dtype=pl.String).fill_null("")
    lower = ser.str.to_lowercase()
    if cfg.shingle_unit == "char":
        norm = lower.str.replace_all(f"[{_ASCII_WS}]+", " ").str.strip_chars(" ")
        rows = norm.str.split("").list.filter(pl.element() != "")
    else:
        rows = lower.str.extract_all(_ASCII_TOKEN).fill_null([])
    other = (ser.str.len_bytes() != ser.str.len_chars()).to_numpy()  # a non-ASCII character takes 2+ bytes
    if other.any():
        idx = np.flatnonzero(other)
        fixed = pl.Series("t", [_units(texts[i], cfg) for i in idx.tolist()], dtype=pl.List(pl.String))
        take = np.arange(len(rows))
        take[idx] = len(rows) + np.arange(len(idx))
        rows = pl.concat([rows, fixed.rename(rows.name)]).gather(take)
    return rows.rename("units")


def _mix(h: np.ndarray) -> np.ndarray:
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def shingle_hash_rows(texts: Sequence[str | None], cfg: MinhashConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hashed shingles of many texts: a flat uint64 buffer and (n + 1) row offsets into it.

    Row i holds one 64-bit hash per shingle position of text i (the hashed form of
    `shingles(text, cfg)`, repeats included): a text shorter than one shingle has one shingle,
    an empty text none.

    >>> flat, offsets = shingle_hash_rows(["a b c", "", "a b"], MinhashConfig(shingle_size=2))
    >>> offsets.tolist(), bool(flat[0] == flat[2])
    ([0, 2, 2, 3], True)
    """
    return hash_unit_rows(unit_rows(texts, cfg), cfg.shingle_size)


def hash_shingles(units: Sequence[Sequence[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """`shingle_hash_rows` of already tokenised texts (lists of tokens or characters), k units per shingle."""
    return hash_unit_rows(pl.Series("units", [list(u) for u in units], dtype=pl.List(pl.String)), k)


def hash_unit_rows(rows: pl.Series, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`hash_shingles` of a List[String] series (`unit_rows`): vectorised, no per-document Python."""
    lengths = rows.list.len().fill_null(0).to_numpy().astype(np.int64, copy=False)
    flat_units = rows.explode().drop_nulls()
    vocab = flat_units.unique()
    vocab_hash = pl.Series([unit_hash(u) for u in vocab.to_list()], dtype=pl.UInt64)
    h = flat_units.replace_strict(vocab, vocab_hash, return_dtype=pl.UInt64).to_numpy()
    n_shingles = np.where(lengths == 0, 0, np.where(lengths <= k, 1, lengths - k + 1))
    offsets = np.zeros(len(lengths) + 1, dtype=np.uint64)
    np.cumsum(n_shingles, out=offsets[1:])
    if not h.size:
        return np.zeros(0, dtype=np.uint64), offsets
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    short_doc = (lengths > 0) & (lengths < k)  # one shingle of all its units
    short_slot = np.repeat(short_doc, n_shingles)
    with np.errstate(over="ignore"):
        if h.size >= k:  # full windows: every k consecutive units of the flat buffer, then keep those inside a text
            acc = np.zeros(h.size - k + 1, dtype=np.uint64)
            for j in range(k):
                acc = acc * _SHINGLE_MULT + h[j : h.size - k + 1 + j]
            rel = np.arange(h.size - k + 1) - np.repeat(starts, lengths)[: h.size - k + 1]
            keep = rel <= np.repeat(lengths - k, lengths)[: h.size - k + 1]
            out[~short_slot] = _mix(acc[keep] ^ (np.uint64(k) * _MIX2))
        if short_doc.any():
            first = starts[short_doc]
            width = lengths[short_doc].astype(np.uint64)
            acc = np.zeros(first.size, dtype=np.uint64)
            for j in range(k - 1):
                take = np.uint64(j) < width
                acc = np.where(take, acc * _SHINGLE_MULT + h[np.minimum(first + j, h.size - 1)], acc)
            out[short_slot] = _mix(acc ^ (width * _MIX2))
    return out, offsets


def shingle_hash_set(text: str | None, cfg: MinhashConfig) -> set[int]:
    """The set of 64-bit shingle hashes of one text (what exact Jaccard compares)."""
    flat, _ = shingle_hash_rows([text], cfg)
    return set(flat.tolist())


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity of two shingle sets (two empty sets: 1.0)."""
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def signatures(shingle_sets: Sequence[set[str]], cfg: MinhashConfig) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures of string shingle sets, computed by rensa in one call.

    Not comparable with `sign_texts` signatures (that path hashes shingles itself); use one or the other.
    """
    if not shingle_sets:
        return np.zeros((0, cfg.num_perm), dtype=np.uint32)
    matrix = _rensa.RMinHash.digest_matrix_from_token_sets([list(s) for s in shingle_sets], cfg.num_perm, cfg.seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(shingle_sets), cfg.num_perm)


def sign_texts(texts: Sequence[str | None], cfg: MinhashConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n, num_perm) uint32 signatures of texts from their hashed shingles (one rensa call), and
    a boolean array marking texts without shingles."""
    flat, offsets = shingle_hash_rows(texts, cfg)
    return signatures_from_hashes(flat, offsets, cfg), offsets[1:] == offsets[:-1]


def signatures_from_hashes(flat: np.ndarray, offsets: np.ndarray, cfg: MinhashConfig) -> np.ndarray:
    """(n, num_perm) uint32 signatures of `shingle_hash_rows` output, in one rensa call."""
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros((0, cfg.num_perm), dtype=np.uint32)
    matrix = _rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, cfg.num_perm, cfg.seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(n, cfg.num_perm)


def band_hashes(sigs: np.ndarray, cfg: MinhashConfig, group_codes: np.ndarray | None = None) -> np.ndarray:
    """(n, bands) uint64 bucket keys: FNV-1a over each band's rows (and the item's group, if any)."""
    bands, rows = cfg.band_params()
    n = sigs.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
            if group_codes is not None:
                h = (h ^ group_codes.astype(np.uint64)) * _FNV_PRIME
            h = (h ^ np.uint64(b)) * _FNV_PRIME
            for col in sigs[:, b * rows : (b + 1) * rows].T:
                h = (h ^ col.astype(np.uint64)) * _FNV_PRIME
            out[:, b] = h
    return out


def candidate_pairs(keys: np.ndarray, max_bucket_size: int) -> np.ndarray:
    """Unique (i, j), i < j, of items that share a bucket in any band; (m, 2) int64."""
    n = keys.shape[0]
    found: list[np.ndarray] = []
    for b in range(keys.shape[1]):
        col = keys[:, b]
        order = np.argsort(col, kind="stable")
        sorted_keys = col[order]
        same_next = sorted_keys[1:] == sorted_keys[:-1]
        if not same_next.any():
            continue
        # runs of equal keys: start index and length
        starts = np.flatnonzero(np.r_[True, ~same_next])
        lengths = np.diff(np.r_[starts, n])
        # every bucket: chain consecutive members (covers size-2 buckets exactly)
        idx = np.flatnonzero(same_next)
        found.append(np.stack([order[idx], order[idx + 1]], axis=1))
        # small buckets of 3+: all pairs
        for start, length in zip(starts[(lengths > 2) & (lengths <= max_bucket_size)], lengths[(lengths > 2) & (lengths <= max_bucket_size)]):
            members = order[start : start + length]
            ii, jj = np.triu_indices(length, k=2)
            found.append(np.stack([members[ii], members[jj]], axis=1))
        # big buckets: also a star to the first member
        for start, length in zip(starts[lengths > max_bucket_size], lengths[lengths > max_bucket_size]):
            members = order[start : start + length]
            found.append(np.stack([np.full(length - 2, members[0]), members[2:]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    code = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([code // n, code % n], axis=1)


@dataclass(frozen=True)
class SignedShard:
    """What `NearDupIndex` keeps of a shard: signatures, empty-text flags, formula keys."""

    sigs: np.ndarray
    empty: list[bool]
    formulas: list[str | None]


def sign_shard(texts: Sequence[str | None], cfg: MinhashConfig) -> SignedShard:
    """MinHash signatures (and formula keys when `cfg.formula_match`) of one shard of texts."""
    sigs, empty = sign_texts(texts, cfg)
    if cfg.formula_match:
        formulas = [formula_key(t or "", max_prose_words=cfg.formula_max_prose_words) for t in texts]
    else:
        formulas = [None] * len(texts)
    return SignedShard(sigs, empty.tolist(), formulas)


@dataclass(frozen=True)
class NearDupResult:
    """`rows`: one row per item (item_id, cluster_id, is_representative, similarity); `stats`: counts."""

    rows: pl.DataFrame
    stats: dict


class NearDupIndex:
    """Streaming near-duplicate finder: `add` shards, then `resolve` once.

    Args:
        cfg: MinHash knobs.
    Items are ranked by (order_key, item_id) ascending; the best-ranked item of a cluster is its
    representative. With `groups`, only items of the same group can be duplicates (traces of one prompt).
    """

    def __init__(self, cfg: MinhashConfig | None = None) -> None:
        self.cfg = cfg or MinhashConfig()
        self._ids: list[str] = []
        self._orders: list = []
        self._groups: list[str | None] = []
        self._sigs: list[np.ndarray] = []
        self._empty: list[bool] = []
        self._formulas: list[str | None] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self,
        item_ids: Sequence[str],
        texts: Sequence[str | None],
        order_keys: Sequence | None = None,
        groups: Sequence[str | None] | None = None,
    ) -> None:
        """Sign one shard of documents; only their signatures are kept."""
        if len(item_ids) != len(texts):
            raise DedupError(f"add: {len(item_ids)} item_ids but {len(texts)} texts")
        self.add_signed(item_ids, sign_shard(texts, self.cfg), order_keys, groups)

    def add_signed(
        self,
        item_ids: Sequence[str],
        signed: SignedShard,
        order_keys: Sequence | None = None,
        groups: Sequence[str | None] | None = None,
    ) -> None:
        """Add a shard signed elsewhere (e.g. by a Prefect task) with `sign_shard`."""
        if len(item_ids) != signed.sigs.shape[0]:
            raise DedupError(f"add_signed: {len(item_ids)} item_ids but {signed.sigs.shape[0]} signatures")
        if signed.sigs.shape[1] != self.cfg.num_perm:
            raise DedupError(f"add_signed: signatures have {signed.sigs.shape[1]} permutations, config has {self.cfg.num_perm}")
        self._sigs.append(signed.sigs)
        self._empty.extend(signed.empty)
        self._formulas.extend(signed.formulas)
        self._ids.extend(str(i) for i in item_ids)
        self._orders.extend(order_keys if order_keys is not None else [None] * len(item_ids))
        self._groups.extend(groups if groups is not None else [None] * len(item_ids))

    def _ranks(self) -> np.ndarray:
        frame = pl.DataFrame({"item_id": self._ids, "order_key": self._orders}, strict=False).with_row_index("i")
        ranked = frame.sort(["order_key", "item_id"], nulls_last=True)["i"].to_numpy()
        rank = np.empty(len(ranked), dtype=np.int64)
        rank[ranked] = np.arange(len(ranked))
        return rank

    def candidates(self) -> np.ndarray:
        """Candidate pairs (indices into the added items) from LSH banding; empty texts never match."""
        if not self._ids:
            return np.zeros((0, 2), dtype=np.int64)
        sigs = np.concatenate(self._sigs) if len(self._sigs) > 1 else self._sigs[0]
        self._sigs = [sigs]
        codes = None
        if any(g is not None for g in self._groups):
            codes = pl.Series(self._groups, dtype=pl.String).fill_null("").cast(pl.Categorical).to_physical().to_numpy()
        keys = band_hashes(sigs, self.cfg, codes)
        empty = np.asarray(self._empty, dtype=bool)
        if empty.any():  # give empty documents unique keys so they collide with nothing
            keys[empty] = np.arange(empty.sum(), dtype=np.uint64)[:, None] ^ np.uint64(0xE3E3E3E3E3E3E3E3)
        return candidate_pairs(keys, self.cfg.max_bucket_size)

    def resolve(self, fetch_texts: Callable[[Sequence[str]], Mapping[str, str]]) -> NearDupResult:
        """Verify candidates by exact Jaccard (texts fetched in batches) and cluster them.

        Args:
            fetch_texts: returns {item_id: text} for the ids asked (a warehouse query or a dict lookup).
        """
        pairs = self.candidates()
        n = len(self._ids)
        rank = self._ranks()
        uf = UnionFind(rank)
        best_sim = np.full(n, np.nan)
        n_verified = 0
        batch = max(1, self.cfg.verify_batch_pairs)
        for lo in range(0, len(pairs), batch):
            chunk = pairs[lo : lo + batch]
            needed = np.unique(chunk)
            ids = [self._ids[i] for i in needed]
            texts = fetch_texts(ids)
            missing = [i for i in ids if i not in texts]
            if missing:
                raise DedupError(f"fetch_texts returned no text for {len(missing)} ids, e.g. {missing[:3]}")
            flat, offsets = shingle_hash_rows([texts[self._ids[i]] for i in needed.tolist()], self.cfg)
            bounds = offsets.astype(np.int64).tolist()
            sets = {i: set(flat[bounds[r] : bounds[r + 1]].tolist()) for r, i in enumerate(needed.tolist())}
            nums = {i: numbers(texts[self._ids[i]] or "") for i in needed.tolist()} if self.cfg.require_equal_numbers else {}
            for a, b in chunk.tolist():
                sim = jaccard(sets[a], sets[b])
                if sim >= self.cfg.threshold and (not nums or nums[a] == nums[b]):
                    n_verified += 1
                    uf.union(a, b)
                    best_sim[a] = np.fmax(best_sim[a], sim)
                    best_sim[b] = np.fmax(best_sim[b], sim)
        n_formula = 0
        if any(f is not None for f in self._formulas):
            first_of: dict[tuple, int] = {}
            for i, (f, g) in enumerate(zip(self._formulas, self._groups)):
                if f is None:
                    continue
                j = first_of.setdefault((g, f), i)
                if j != i:
                    n_formula += 1
                    uf.union(i, j)
                    best_sim[i] = best_sim[j] = 1.0
        roots = uf.roots()
        is_rep = roots == np.arange(n)
        in_cluster = np.bincount(roots, minlength=n)[roots] > 1
        similarity = np.where(is_rep & in_cluster, 1.0, best_sim)
        rows = pl.DataFrame(
            {
                "item_id": self._ids,
                "cluster_id": [self._ids[r] for r in roots.tolist()],
                "is_representative": is_rep,
                "similarity": similarity,
            },
            schema={"item_id": pl.String, "cluster_id": pl.String, "is_representative": pl.Boolean, "similarity": pl.Float64},
        ).with_columns(pl.col("similarity").fill_nan(None))
        stats = {
            "n_items": n,
            "n_candidate_pairs": len(pairs),
            "n_verified_pairs": n_verified,
            "n_formula_links": n_formula,
            "n_duplicates": int((~is_rep).sum()),
            "n_clusters": int((is_rep & in_cluster).sum()),
            "bands_rows": list(self.cfg.band_params()),
        }
        return NearDupResult(rows, stats)


def find_near_duplicates(items: pl.DataFrame, cfg: MinhashConfig | None = None, *, shard_size: int = 10_000) -> NearDupResult:
    """Near duplicates of an in-memory table `items(item_id, text[, order_key][, group_key])`.

    >>> df = pl.DataFrame({"item_id": ["x", "y"], "text": ["one two three four five six", "one two three four five six"]})
    >>> find_near_duplicates(df).rows["is_representative"].to_list()
    [True, False]
    """
    for col in ("item_id", "text"):
        if col not in items.columns:
            raise DedupError(f"find_near_duplicates: input has no column {col!r} (columns: {items.columns})")
    index = NearDupIndex(cfg)
    for start in range(0, items.height, shard_size):
        part = items.slice(start, shard_size)
        index.add(
            part["item_id"].to_list(),
            part["text"].to_list(),
            part["order_key"].to_list() if "order_key" in part.columns else None,
            part["group_key"].to_list() if "group_key" in part.columns else None,
        )
    lookup = dict(zip(items["item_id"].to_list(), items["text"].to_list()))
    return index.resolve(lambda ids: {i: lookup[i] for i in ids})
