"""Semantic dedup on the paraphrase sets: per-set figures, threshold sweeps and the leave-one-set-out choice.

Run: python bench/semantic_sets.py [--sets dev,1,...] [--thresholds 0.5,0.55] [--near-identical 0.7] [--loso]
     [--show 8]  (print the missed paraphrases and the linked negatives of set 8 at the default config)

The sets are tests/dedup/semantic_cases.py (docs/semantic_dedup.md says how each was written and used).
Two figures per set, as in tests/dedup/test_semantic_acceptance.py:

- pairwise: recall = share of paraphrase pairs linked (cosine >= threshold and the guard agrees),
  false = share of hard negatives linked;
- end to end: every text of the set in one `semantic_clusters` run; recall = share of paraphrase pairs in
  one cluster, false = share of negatives whose second text shares a cluster with any other text.

`--pool`: every distinct text of the chosen sets in one run (and the code prompts alone): paraphrase pairs
together, and texts that share a cluster with a text of another problem (a problem: a text and its paraphrases).

`--loso`: for each set, the (threshold, near_identical) on the grid that maximises the mean over the *other*
sets of end-to-end (recall - false), ties to the higher values; the defaults are the medians of the choices.
Needs the semantic extra (pip install -e '.[semantic]').
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/bench_semantic.py

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.dedup.semantic import Embedder, Guard, SemanticConfig, missing_extra, semantic_clusters
from tests.dedup import semantic_cases as cases

SETS = {
    "dev": (cases.PARAPHRASES, cases.NUMBER_NEGATIVES + cases.WORDING_NEGATIVES),
    **{str(k): (getattr(cases, f"HOLDOUT{'' if k == 1 else k}_PARAPHRASES"),
                getattr(cases, f"HOLDOUT{'' if k == 1 else k}_NEGATIVES"))
       for k in range(1, 20) if hasattr(cases, f"HOLDOUT{'' if k == 1 else k}_PARAPHRASES")},
}
SAME_PROBLEM = {"What number is 3 less than 11?"}  # a development negative that is a true duplicate of a paraphrase


class Vectors:
    """Embeddings of every text, encoded once."""

    def __init__(self, embedder: Embedder, texts: list[str]) -> None:
        unique = sorted(set(texts))
        self._row = {t: i for i, t in enumerate(unique)}
        self._emb = embedder.encode(unique)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self._emb[[self._row[t] for t in texts]]


def pairwise(vec: Vectors, pairs: list[tuple[str, str]], cfg: SemanticConfig) -> np.ndarray:
    """Per pair: linked (cosine >= threshold and the guard agrees)."""
    a, b = vec([p[0] for p in pairs]), vec([p[1] for p in pairs])
    guard = Guard.of([t for p in pairs for t in p], cfg)
    allowed = guard.allows_pairs(np.array([(2 * i, 2 * i + 1) for i in range(len(pairs))], dtype=np.int64))
    return ((a * b).sum(axis=1) >= cfg.threshold) & allowed


def end_to_end(vec: Vectors, paraphrases, negatives, cfg: SemanticConfig) -> tuple[float, float, list, list]:
    """(recall, false, missed paraphrase pairs, merged negative texts) with every text of the set in one run."""
    texts = [t for p in paraphrases for t in p] + [p[1] for p in negatives]
    ids = [f"p{i:03d}{s}" for i in range(len(paraphrases)) for s in "ab"] + [f"n{i:03d}" for i in range(len(negatives))]
    rows = semantic_clusters(ids, texts, vec(texts), cfg).rows
    cluster = dict(zip(rows["item_id"].to_list(), rows["cluster_id"].to_list()))
    size: dict[str, int] = {}
    for c in cluster.values():
        size[c] = size.get(c, 0) + 1
    missed = [p for i, p in enumerate(paraphrases) if cluster[f"p{i:03d}a"] != cluster[f"p{i:03d}b"]]
    merged = [negatives[i][1] for i in range(len(negatives))
              if size[cluster[f"n{i:03d}"]] > 1 and negatives[i][1] not in SAME_PROBLEM]
    return 1 - len(missed) / len(paraphrases), len(merged) / len(negatives), missed, merged


def pool(vec: Vectors, names: list[str], cfg: SemanticConfig, code_only: bool = False) -> str:
    """Every distinct text of the sets `names` in one `semantic_clusters` run; one line of figures."""
    problem: dict[str, str] = {}

    def find(t: str) -> str:
        while problem.setdefault(t, t) != t:
            t = problem[t]
        return t

    for name in names:
        para, neg = SETS[name]
        for a, b in para:
            problem[find(a)] = find(b)
        for a, b in neg:
            find(a), find(b)
    for a in SAME_PROBLEM:
        problem[find(a)] = find("What is 3 less than 11?")
    texts = sorted(t for t in problem if not code_only or re.search(r"\b(?:function|sql|query)\b", t, re.IGNORECASE))
    keep = set(texts)
    pairs = [(a, b) for name in names for a, b in SETS[name][0] if a in keep and b in keep]
    rows = semantic_clusters(texts, texts, vec(texts), cfg).rows
    cluster = dict(zip(rows["item_id"].to_list(), rows["cluster_id"].to_list()))
    members: dict[str, list[str]] = {}
    for t, c in cluster.items():
        members.setdefault(c, []).append(t)
    mixed = sum(any(find(u) != find(t) for u in members[cluster[t]]) for t in texts)
    together = sum(cluster[a] == cluster[b] for a, b in pairs)
    return (f"{'code prompts' if code_only else 'all texts'} ({len(texts)}, {len(pairs)} paraphrase pairs) | "
            f"{cfg.threshold:.2f} | {cfg.near_identical:.2f} | pairs together {together / len(pairs):.3f} | texts in a "
            f"cluster with another problem {mixed / len(texts):.3f} ({mixed}) | largest cluster "
            f"{max(len(m) for m in members.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names (dev, 1, 2, ...)")
    parser.add_argument("--thresholds", default=None, help="comma-separated cosine thresholds (default: the config's)")
    parser.add_argument("--near-identical", default=None, help="comma-separated near_identical values (default: the config's)")
    parser.add_argument("--loso", action="store_true", help="leave-one-set-out choice over the grid (end to end)")
    parser.add_argument("--pool", action="store_true", help="also every text of the sets in one run (and code prompts alone)")
    parser.add_argument("--show", default="", help="comma-separated sets whose failures to print (default config)")
    args = parser.parse_args()
    if (why := missing_extra()) is not None:
        raise SystemExit(why)
    base = SemanticConfig(enabled=True, device="cpu")
    names = args.sets.split(",")
    thresholds = [float(x) for x in args.thresholds.split(",")] if args.thresholds else [base.threshold]
    nears = [float(x) for x in args.near_identical.split(",")] if args.near_identical else [base.near_identical]
    vec = Vectors(Embedder(base), [t for n in names for pairs in SETS[n] for p in pairs for t in p])
    score: dict[tuple[float, float], dict[str, float]] = {}
    print("set | threshold | near_identical | pairwise recall / false | end to end recall / false")
    for near in nears:
        for threshold in thresholds:
            cfg = replace(base, threshold=threshold, near_identical=near)
            for name in names:
                para, neg = SETS[name]
                recall, false = pairwise(vec, para, cfg).mean(), pairwise(vec, neg, cfg).mean()
                e_recall, e_false, _, _ = end_to_end(vec, para, neg, cfg)
                score.setdefault((threshold, near), {})[name] = e_recall - e_false
                print(f"{name} ({len(para)} / {len(neg)}) | {threshold:.2f} | {near:.2f} | {recall:.3f} / {false:.3f} | "
                      f"{e_recall:.3f} / {e_false:.3f}", flush=True)
            if args.pool:
                print(pool(vec, names, cfg), flush=True)
                print(pool(vec, names, cfg, code_only=True), flush=True)
    if args.loso:
        choices = []
        for out in names:
            best = max(score, key=lambda k: (statistics.mean(v for n, v in score[k].items() if n != out), k))
            choices.append(best)
            print(f"leave out {out}: threshold {best[0]:.2f}, near_identical {best[1]:.2f}")
        print(f"median: threshold {statistics.median(c[0] for c in choices):.3f}, "
              f"near_identical {statistics.median(c[1] for c in choices):.3f}")
    for name in filter(None, args.show.split(",")):
        para, neg = SETS[name]
        guard_cfg = base
        for label, pairs, want in (("missed", para, True), ("false", neg, False)):
            linked = pairwise(vec, pairs, guard_cfg)
            guard = Guard.of([t for p in pairs for t in p], guard_cfg)
            for i, p in enumerate(pairs):
                if linked[i] != want:
                    cos = float((vec([p[0]]) * vec([p[1]])).sum())
                    print(f"[{name} {label}] cos {cos:.2f} guard {guard.conflict(2 * i, 2 * i + 1)}: {p[0]!r} / {p[1]!r}")
        _, _, missed, merged = end_to_end(vec, para, neg, guard_cfg)
        print(f"[{name} end to end] missed {len(missed)}, negatives merged: {merged}")


if __name__ == "__main__":
    main()
