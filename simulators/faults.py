"""Fault scenarios for the simulated fleet (issue 3): every failure kind appears in ``make run``.

Pure and seeded: no I/O, no clock.  The fleet (:mod:`simulators.fleet`) draws
each reading at DOMAIN.md §5 rates and calls every fault it was given
(``Fleet.add_fault``) on the payload it is about to publish; a fault returns
the payload, a rewritten one, or None (the device stays silent).  The
scenarios:

* :class:`BadStripLot`: a strip lot whose invalid rate jumps after a point;
* :class:`SilentReader`: a device that stops publishing for a while;
* :class:`MismatchingReader`: a device whose own verdict or cut-off disagrees
  with the server's registry.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.judging import Thresholds
from schemas.reading import Verdict
from simulators import strips
from simulators.fleet import Fleet


def make_lines(verdict: Verdict, rng: random.Random, th: Thresholds | None = None) -> tuple[float, float]:
    """(c_line, t_line) that ratio-mode judging with ``th`` turns into ``verdict``."""
    signal = strips.lines(rng, verdict.value, th or Thresholds())
    return signal["c_line"], signal["t_line"]


def make_inhibition(verdict: Verdict, rng: random.Random, th: Thresholds | None = None) -> float:
    return strips.inhibition(rng, verdict.value, th or Thresholds())


def set_verdict(payload: dict[str, Any], verdict: Verdict, rng: random.Random) -> dict[str, Any]:
    """A copy of ``payload`` whose signal judges as ``verdict``; the device reports the same."""
    out = {**payload, "signal": dict(payload.get("signal") or {}), "device_result": verdict.value}
    method = (payload.get("assay") or {}).get("method", "colloidal_gold")
    if method == "enzyme_inhibition":
        if verdict in (Verdict.SUSPICIOUS, Verdict.INVALID):
            verdict = Verdict.NEGATIVE
            out["device_result"] = verdict.value
        out["signal"]["inhibition_pct"] = make_inhibition(verdict, rng)
    else:
        out["signal"]["c_line"], out["signal"]["t_line"] = make_lines(verdict, rng)
    return out


@dataclass(frozen=True)
class BadStripLot:
    """From its ``starts_after``-th strip (or ``starts_at``), this lot fails at ``invalid_rate``."""

    strip_lot: str
    starts_after: int = 0
    invalid_rate: float = 0.30
    seed: int = 0
    starts_at: datetime | None = None

    def is_invalid(self, index: int, usual_rate: float, now: datetime | None = None) -> bool:
        """Deterministic per (seed, index): is strip number ``index`` of this lot invalid?"""
        rng = random.Random(f"{self.seed}:{self.strip_lot}:{index}")
        bad = index >= self.starts_after and (self.starts_at is None or (now is not None and now >= self.starts_at))
        return rng.random() < (self.invalid_rate if bad else usual_rate)


@dataclass(frozen=True)
class SilentReader:
    """A device that publishes nothing in ``[silent_from, silent_from + duration)``."""

    device_id: str
    silent_from: datetime
    duration: timedelta = timedelta(hours=3)

    def silent(self, device_id: str, now: datetime) -> bool:
        return device_id == self.device_id and self.silent_from <= now < self.silent_from + self.duration


@dataclass(frozen=True)
class MismatchingReader:
    """A device whose own verdict disagrees with the server at ``rate``, or whose cut-off is wrong."""

    device_id: str
    rate: float = 0.2
    wrong_cutoff: float | None = 0.60

    def rewrite(self, payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        out = {**payload, "assay": dict(payload.get("assay") or {})}
        if self.wrong_cutoff is not None and out["assay"].get("method", "colloidal_gold") == "colloidal_gold":
            out["assay"]["cutoff_ratio"] = self.wrong_cutoff
        if rng.random() < self.rate:
            out["device_result"] = flip(payload.get("device_result"))
        return out


def flip(device_result: object) -> str:
    """A verdict that is certainly different from ``device_result``."""
    return Verdict.POSITIVE.value if device_result == Verdict.NEGATIVE.value else Verdict.NEGATIVE.value


# --- the fleet's fault hook (simulators.fleet.Fault): apply(station_id, device_id, strip_lot, payload, now) ---


class LotFault:
    """:class:`BadStripLot` as a fleet fault: strips of the lot turn invalid once it has gone bad."""

    def __init__(self, lot: BadStripLot) -> None:
        self.lot = lot
        self.count = 0

    def apply(
        self, station_id: str, device_id: str, strip_lot: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        if strip_lot != self.lot.strip_lot or (payload.get("signal") or {}).get("c_line") is None:
            return payload
        index, self.count = self.count, self.count + 1
        if not self.lot.is_invalid(index, 0.0, now):
            return payload
        return set_verdict(payload, Verdict.INVALID, random.Random(f"{self.lot.seed}:{strip_lot}:{index}:lines"))


class SilenceFault:
    """:class:`SilentReader` as a fleet fault: the device's readings are suppressed while it is silent."""

    def __init__(self, reader: SilentReader) -> None:
        self.reader = reader

    def apply(
        self, station_id: str, device_id: str, strip_lot: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        return None if self.reader.silent(device_id, now) else payload


class MismatchFault:
    """:class:`MismatchingReader` as a fleet fault, with its own seeded random source."""

    def __init__(self, reader: MismatchingReader, seed: int = 0) -> None:
        self.reader = reader
        self.rng = random.Random(seed)

    def apply(
        self, station_id: str, device_id: str, strip_lot: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        return self.reader.rewrite(payload, self.rng) if device_id == self.reader.device_id else payload


def fleet_faults(
    device_ids: Sequence[str],
    strip_lots: Sequence[str],
    start: datetime,
    silent_for: timedelta = timedelta(hours=3),
    *,
    silent_after: timedelta = timedelta(minutes=10),
    bad_lot_after: int = 200,
    bad_lot_invalid_rate: float = 0.30,
    seed: int = 0,
) -> list[LotFault | SilenceFault | MismatchFault]:
    """One of each scenario for ``Fleet.add_fault``.

    The last of ``strip_lots`` (pass colloidal-gold lots) goes bad after ``bad_lot_after`` strips, the first
    device goes silent ``silent_after`` after ``start`` for ``silent_for``, the second reports a wrong
    cut-off and flips verdicts.
    """
    faults: list[LotFault | SilenceFault | MismatchFault] = []
    if strip_lots:
        bad = BadStripLot(strip_lots[-1], starts_after=bad_lot_after, invalid_rate=bad_lot_invalid_rate, seed=seed)
        faults.append(LotFault(bad))
    if device_ids:
        faults.append(SilenceFault(SilentReader(device_ids[0], start + silent_after, silent_for)))
    if len(device_ids) > 1:
        faults.append(MismatchFault(MismatchingReader(device_ids[1]), seed=seed))
    return faults


def add_fleet_faults(fleet: Fleet, start: datetime, **options: Any) -> list[LotFault | SilenceFault | MismatchFault]:
    """:func:`fleet_faults` added to ``fleet``: its busiest colloidal-gold lot goes bad (so the invalid-rate
    alarm comes soon), its first reader falls silent, its second mismatches; ``options`` go to
    :func:`fleet_faults`."""
    faults = fleet_faults([d.device_id for d in fleet.devices], fleet.gold_lots_by_use(), start, **options)
    for fault in faults:
        fleet.add_fault(fault)
    return faults


def describe(faults: Sequence[LotFault | SilenceFault | MismatchFault]) -> list[str]:
    """One line per scenario, for the simulator's start-up message."""
    out = []
    for f in faults:
        if isinstance(f, LotFault):
            out.append(f"strip lot {f.lot.strip_lot} goes bad after {f.lot.starts_after} strips "
                       f"({f.lot.invalid_rate:.0%} invalid)")
        elif isinstance(f, SilenceFault):
            r = f.reader
            out.append(f"reader {r.device_id} silent from {r.silent_from.isoformat(timespec='seconds')} "
                       f"for {r.duration}")
        else:
            m = f.reader
            cutoff = f"reports cut-off {m.wrong_cutoff} and " if m.wrong_cutoff is not None else ""
            out.append(f"reader {m.device_id} {cutoff}flips {m.rate:.0%} of its verdicts")
    return out
