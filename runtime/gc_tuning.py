"""Garbage-collector settings for the long-running message processes (bridge, consumers).

A batch of 2,000 readings keeps ~100,000 young objects alive (pydantic models,
dicts, strings) for a few milliseconds.  With CPython's default first-generation
threshold of 700 allocations, the collector runs ~150 times a batch and each
older-generation pass rescans everything alive; measured on the flagger, that
was a third of its CPU (178 → 120 µs a reading with the settings below).

It is off by default (``RT_GC_GEN0_THRESHOLD=0``): with 50,000 on every process,
positive → SSE latency at 1,000 readings/s rose from p99 2.1-3.4 s to 5.7-6.3 s in
``python -m bench.flagging --sse`` on the same machine (cause not yet found;
Kafka futures and their callbacks form cycles that then wait for a collection).
"""

from __future__ import annotations

import gc


def tune_gc(gen0_threshold: int) -> None:
    """Freeze the objects alive after start-up (modules, settings) out of every later collection and
    raise the first-generation threshold; ``gen0_threshold`` 0 keeps CPython's defaults."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, 50, 100)
