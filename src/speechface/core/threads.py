"""How many CPU threads torch uses for a call, chosen from the model's size.

speechface's models are small (0.2-0.4 M weights for the speech estimators, a few M for the
translators). Splitting such a forward pass over several OpenMP threads saves little on an idle
machine, and when another process keeps a core busy the threads wait for each other at every
barrier: on a 2-core machine with one busy neighbour, ``predict`` of 60 s took 520 ms with 2
threads against 56 ms with 1 (``benchmarks/bench_threads.py``). :func:`auto_threads` therefore
uses **one thread for models under** :data:`SMALL_MODEL_WEIGHTS` weights and torch's default
otherwise; ``SPEECHFACE_THREADS`` (or the CLI's ``--threads``) overrides it.

Example:
    >>> import torch
    >>> with limit_threads(1):
    ...     torch.get_num_threads()
    1
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["SMALL_MODEL_WEIGHTS", "auto_threads", "choose_threads", "limit_threads"]

#: Models with fewer weights than this run on one thread by default.
SMALL_MODEL_WEIGHTS = 20_000_000


def _weights(modules: tuple[Any, ...]) -> int:
    total = 0
    for m in modules:
        if m is not None and hasattr(m, "parameters"):
            total += sum(int(p.numel()) for p in m.parameters())
    return total


def choose_threads(*modules: Any, requested: int | None = None) -> int:
    """The thread count for a call running ``modules``.

    ``requested`` (if given), else ``SPEECHFACE_THREADS`` (if set), else 1 when the modules
    together have fewer than :data:`SMALL_MODEL_WEIGHTS` weights, else torch's current setting.

    Raises:
        ValueError: a requested count (or ``SPEECHFACE_THREADS``) that is not an integer >= 1.

    Example:
        >>> choose_threads(torch.nn.Linear(4, 4))
        1
    """
    if requested is None and os.environ.get("SPEECHFACE_THREADS"):
        text = os.environ["SPEECHFACE_THREADS"]
        try:
            requested = int(text)
        except ValueError:
            raise ValueError(f"SPEECHFACE_THREADS must be an integer >= 1, got {text!r}") from None
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"threads must be an integer >= 1, got {requested!r}")
        return requested
    if _weights(modules) < SMALL_MODEL_WEIGHTS:
        return 1
    return torch.get_num_threads()


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; the previous count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def auto_threads(*modules: Any, requested: int | None = None) -> Iterator[int]:
    """:func:`limit_threads` with :func:`choose_threads`; yields the count used.

    Example:
        >>> with auto_threads(torch.nn.Linear(4, 4)) as n:
        ...     n
        1
    """
    n = choose_threads(*modules, requested=requested)
    with limit_threads(n):
        yield n
