"""Where an augmentation's random draws come from: a generator of its own for each call,
never state kept on the processor between calls or steps.

* ``seed=None`` (the default): calls draw from their thread's own generator, seeded
  with fresh entropy (again in each DataLoader worker), so calls are independent
  whatever thread makes them and no generator is shared between threads.
* ``seed=s``: the n-th call of a processor (in this process) draws from a generator
  seeded with ``(s, worker key, n)``, so a sequence of reads is reproducible — its
  ``prob`` coin included — and two processors with different seeds never share draws.
  ``n`` is a call count kept beside the processor (not on it), read and advanced
  atomically, so threads sharing a processor still get distinct draws.
* :func:`worker_init_fn`, given to ``DataLoader(worker_init_fn=...)``, makes the worker's
  id part of the key, so workers do not repeat each other's draws, and a run with the
  same seed gives every worker the same sequence again.

The ``prob`` coin is the call's first draw (:func:`applies`; none when ``prob`` is 1), so
whether a call applies and what it draws come from one stream.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Hashable
from typing import Any

import numpy as np

__all__ = ["applies", "call_generator", "worker_init_fn"]

_WORKER_KEY = 0
_COUNTERS: dict[Hashable, itertools.count[int]] = {}
_LOCK = threading.Lock()


def worker_init_fn(worker_id: int) -> None:
    """For ``torch.utils.data.DataLoader(worker_init_fn=...)``: this worker's draws
    differ from the other workers' (and repeat across runs with the same seeds)."""
    global _WORKER_KEY
    _WORKER_KEY = int(worker_id) + 1
    with _LOCK:
        _COUNTERS.clear()  # a forked worker starts its own sequences


def _counter(owner: Any, key: Hashable) -> itertools.count[int]:
    with _LOCK:
        counter = _COUNTERS.get(key)
        if counter is None:
            counter = _COUNTERS[key] = itertools.count()
            if owner is not None:
                weakref.finalize(owner, _COUNTERS.pop, key, None)
        return counter


_THREAD = threading.local()


def _new_thread_generators() -> None:
    """In a forked child: its threads' generators start afresh (a forked copy of the
    parent's would repeat the parent's and the sibling workers' draws)."""
    global _THREAD
    _THREAD = threading.local()


os.register_at_fork(after_in_child=_new_thread_generators)


def call_generator(seed: int | None, owner: Any = None, name: str = "") -> np.random.Generator:
    """The generator of one call: without a seed, this thread's own generator (seeded
    once from fresh entropy: never shared between threads, and cheaper than fresh
    entropy per call); with one, the next in the sequence of ``owner`` (a processor
    object) or, for a function, of ``(name, seed)``."""
    if seed is None:
        own: np.random.Generator | None = getattr(_THREAD, "generator", None)
        if own is None or getattr(_THREAD, "worker_key", None) != _WORKER_KEY:
            own = _THREAD.generator = np.random.default_rng()
            _THREAD.worker_key = _WORKER_KEY
        return own
    key: Hashable = ("object", id(owner)) if owner is not None else ("function", name, seed)
    n = next(_counter(owner, key))
    return np.random.default_rng([int(seed), _WORKER_KEY, n])


def applies(rng: np.random.Generator, prob: float) -> bool:
    """The call's ``prob`` coin, the call's first draw (none when ``prob`` is 1)."""
    if prob == 1.0:  # always: no draw (the stream is the same run after run either way)
        return True
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be between 0 and 1; got {prob!r}")
    return bool(rng.random() < prob)
