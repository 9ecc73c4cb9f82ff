"""Benchmark arithmetic and process sampling: percentiles, rates, peak RSS."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import psutil


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    rank = (len(sorted_values) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def percentiles(values: Iterable[float], ps: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": …, "p95": …, "p99": …, "max": …, "n": …}`` of ``values`` (NaN when empty)."""
    ordered = sorted(values)
    out = {f"p{p:g}": percentile(ordered, p) for p in ps}
    out["max"] = ordered[-1] if ordered else math.nan
    out["n"] = float(len(ordered))
    return out


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def backend_cpu(dbname: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend now connected to ``dbname`` (by its process title,
    ``postgres: … user dbname host(port) state``): the server must run on this machine."""
    out = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            title = " ".join(proc.info["cmdline"] or [])
            if title.startswith("postgres: ") and f" {dbname} " in title:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
        except psutil.Error:
            continue
    return out


def _rss(proc: psutil.Process, children: bool) -> int:
    total = proc.memory_info().rss
    if children:
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return total


class RssSampler:
    """Samples the resident set size of named processes in a background thread; keeps the peaks.

    ``with RssSampler({"bridge": pid, "mosquitto": pid2}) as sampler: ...`` then
    ``sampler.peaks_mb()``.  A process that exits keeps its last peak.
    """

    def __init__(self, pids: Mapping[str, int], interval_s: float = 0.25, *, children: bool = False) -> None:
        self.interval_s = interval_s
        self.children = children
        self._procs: dict[str, psutil.Process] = {}
        self._peaks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for name, pid in pids.items():
            self.add(name, pid)

    def add(self, name: str, pid: int) -> None:
        with self._lock:
            try:
                self._procs[name] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                return
            self._peaks.setdefault(name, 0)

    def sample(self) -> None:
        with self._lock:
            for name, proc in list(self._procs.items()):
                try:
                    self._peaks[name] = max(self._peaks[name], _rss(proc, self.children))
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    del self._procs[name]

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.peaks()

    def peaks(self) -> dict[str, int]:
        """Peak RSS in bytes by name."""
        with self._lock:
            return dict(self._peaks)

    def peaks_mb(self) -> dict[str, float]:
        return {name: round(peak / 2**20, 1) for name, peak in self.peaks().items()}

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
