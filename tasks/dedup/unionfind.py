"""Union-find over integer item indices, with a deterministic root (the smallest rank wins)."""

from __future__ import annotations

import numpy as np


class UnionFind:
    """Disjoint sets over 0..n-1; `union` keeps the root with the lower `rank_of` value.

    Items are ranked once by the caller (e.g. first ingested, then lowest id), so the root of
    every set is its best-ranked member whatever order the unions arrive in.

    >>> uf = UnionFind([2, 0, 1])
    >>> uf.union(0, 2)
    2
    >>> uf.find(0)
    2
    """

    def __init__(self, rank_of: list[int] | np.ndarray) -> None:
        self.rank_of = np.asarray(rank_of, dtype=np.int64)
        self.parent = np.arange(len(self.rank_of), dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:  # path compression
            parent[i], i = root, int(parent[i])
        return root

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.rank_of[rb] < self.rank_of[ra]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return ra

    def roots(self) -> np.ndarray:
        """The root of every item, as an array aligned with the items."""
        return np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64, count=len(self.parent))
