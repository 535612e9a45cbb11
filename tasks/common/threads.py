"""Torch's intra-op thread count is process-wide: set it for one block and put it back afterwards.

A stage that runs tiny models with one thread (generation, scoring on a 2-core machine) must not
leave a later stage in the same process (fine-tuning in `potstill demo`) running on one core.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch CPU threads (None or 0: leave the count alone), then restore it.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if not n:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
