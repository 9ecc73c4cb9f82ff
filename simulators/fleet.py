"""A simulated fleet of strip readers: markets → stations → readers.

Pure and seeded (``random.Random(seed)``), no I/O: :meth:`Fleet.reading`
turns a clock value into one ``(mqtt_topic, payload)`` pair that passes
``schemas.reading.Reading``.  The intended verdict is drawn first (rates of
DOMAIN.md §5), then the signal is drawn inside that verdict's band of the
ratio rule (DOMAIN.md §1), so a server judging with the same thresholds
agrees with ``device_result`` except for the injected disagreements.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Protocol

from domain.judging import Mode, Thresholds
from schemas.common import ID_RE
from simulators.district import District
from simulators.strips import NEGATIVE, POSITIVE, SUSPICIOUS, draw_verdict, inhibition, lines

CHINA_TZ = timezone(timedelta(hours=8))
TOPIC_TEMPLATE = "rt/v1/markets/{market_id}/stations/{station_id}/devices/{device_id}/readings"

# (commodity, category, weight, weight among positives) — DOMAIN.md §2 "common positives".
Commodity = tuple[str, str, float, float]
_LEAFY: list[Commodity] = [
    ("芹菜", "vegetable", 3, 6), ("菠菜", "vegetable", 2, 4), ("小白菜", "vegetable", 3, 3),
    ("油菜", "vegetable", 2, 3), ("油麦菜", "vegetable", 2, 1),
]
_VEG_FRUIT: list[Commodity] = [
    ("韭菜", "vegetable", 3, 8), ("豇豆", "vegetable", 2, 5), ("茭白", "vegetable", 1, 2),
    ("黄瓜", "vegetable", 2, 1), ("番茄", "vegetable", 2, 1), ("苹果", "fruit", 1, 0.5),
    ("柑橘", "fruit", 1, 0.5),
]
_MEAT: list[Commodity] = [
    ("猪肉", "meat", 5, 5), ("牛肉", "meat", 2, 2), ("羊肉", "meat", 2, 2), ("猪肝", "meat", 1, 2),
]
_FISH: list[Commodity] = [("鳜鱼", "aquatic", 2, 4), ("黑鱼", "aquatic", 2, 4), ("草鱼", "aquatic", 3, 1),
                          ("对虾", "aquatic", 2, 1)]
_EEL_BREAM: list[Commodity] = [
    ("鳗鱼", "aquatic", 2, 4), ("鳊鱼", "aquatic", 2, 4), ("牛蛙", "aquatic", 1, 1)]


@dataclass(frozen=True)
class AnalyteProfile:
    code: str
    group: str  # "pesticide" | "beta_agonist" | "aquatic_drug"
    weight: float  # share inside its group
    commodities: tuple[Commodity, ...]
    enzyme_screen: bool = False  # organophosphate or carbamate: the enzyme-inhibition method applies
    method_standard: str | None = None


ANALYTES: tuple[AnalyteProfile, ...] = (
    AnalyteProfile("chlorpyrifos", "pesticide", 20, (*_LEAFY, ("豇豆", "vegetable", 3, 5)), True, "KJ 201710"),
    AnalyteProfile("carbofuran", "pesticide", 12, tuple(_VEG_FRUIT), True, "KJ 201710"),
    AnalyteProfile("phorate", "pesticide", 12, (*_VEG_FRUIT, *_LEAFY[:2]), True, "KJ 201710"),
    AnalyteProfile("omethoate", "pesticide", 14, (*_LEAFY, ("韭菜", "vegetable", 3, 6)), True, "KJ 201710"),
    AnalyteProfile("procymidone", "pesticide", 12, (("韭菜", "vegetable", 6, 10), ("番茄", "vegetable", 1, 1),
                                             ("黄瓜", "vegetable", 1, 1))),
    AnalyteProfile("fenthion", "pesticide", 14, (("豇豆", "vegetable", 1, 1),), True, "KJ 201710"),
    AnalyteProfile("carbendazim", "pesticide", 16, (("杨梅", "fruit", 3, 4), ("葡萄", "fruit", 2, 1),
                                             ("芹菜", "vegetable", 2, 2), ("茭白", "vegetable", 1, 2))),
    AnalyteProfile("clenbuterol", "beta_agonist", 45, tuple(_MEAT)),
    AnalyteProfile("ractopamine", "beta_agonist", 30, tuple(_MEAT[:3])),
    AnalyteProfile("salbutamol", "beta_agonist", 25, tuple(_MEAT[:3])),
    AnalyteProfile("malachite_green", "aquatic_drug", 40, tuple(_FISH)),
    AnalyteProfile("enrofloxacin", "aquatic_drug", 30, tuple(_EEL_BREAM)),
    AnalyteProfile("chloramphenicol", "aquatic_drug", 15, (*_FISH[2:], ("猪肉", "meat", 1, 1))),
    AnalyteProfile("nitrofuran_aoz", "aquatic_drug", 15, (*_FISH[2:], ("鸡肉", "meat", 1, 1))),
)
# The enzyme-inhibition screen detects the class, not one compound (domain/data/analytes.json).
ENZYME_ANALYTE = "organophosphate_carbamate"
ENZYME_STANDARD = "GB/T 5009.199"


@dataclass(frozen=True)
class FleetConfig:
    markets: int = 3
    stations_per_market: int = 2
    readers_per_station: int = 2
    positive_rate: float = 0.003
    suspicious_rate: float = 0.003
    invalid_rate: float = 0.01
    disagreement_rate: float = 0.001
    # Share of organophosphate/carbamate readings screened by enzyme inhibition.
    enzyme_share: float = 0.30
    # Share of readings that reference a certificate when a pool is given.
    certificate_share: float = 0.8
    group_split: tuple[tuple[str, float], ...] = (
        ("pesticide", 0.87), ("beta_agonist", 0.08), ("aquatic_drug", 0.05))
    lots_per_analyte: int = 3
    operators_per_station: int = 3
    vendors_per_market: int = 120
    thresholds: Thresholds = field(default_factory=Thresholds)
    seed: int = 0
    # Markets are named "{market_prefix}-01", "{market_prefix}-02", ...
    market_prefix: str = "mkt"
    # With a district (simulators/district.py), its markets and stations replace markets/stations_per_market.
    district: District | None = None

    def __post_init__(self) -> None:
        if self.thresholds.mode is not Mode.RATIO:
            raise ValueError("the fleet draws line intensities for ratio-mode thresholds only")
        if self.positive_rate + self.suspicious_rate + self.invalid_rate > 1:
            raise ValueError("positive, suspicious and invalid rates add up to more than 1")
        if not ID_RE.match(f"{self.market_prefix}-{self.markets:02d}"):
            raise ValueError(f"market prefix {self.market_prefix!r} does not make identifiers of [A-Za-z0-9._-]")


@dataclass(frozen=True)
class Device:
    market_id: str
    station_id: str
    device_id: str
    firmware: str
    operators: tuple[str, ...]

    @property
    def topic(self) -> str:
        return TOPIC_TEMPLATE.format(market_id=self.market_id, station_id=self.station_id,
                                     device_id=self.device_id)


@dataclass(frozen=True)
class StripLot:
    lot: str
    analyte: str  # the analyte code the reader reports with this lot
    method: str  # "colloidal_gold" | "enzyme_inhibition"
    thresholds: Thresholds


class Fault(Protocol):
    """A fault scenario (``simulators/faults.py``): rewrite a payload, or return None to suppress it."""

    def apply(self, station_id: str, device_id: str, strip_lot: str, payload: dict[str, Any],
              now: datetime) -> dict[str, Any] | None: ...


class CertificateRef(NamedTuple):
    """A lot readings may sample; with a market (and stall), only readers of that market sample it."""

    certificate_no: str
    lot_code: str
    commodity: str
    category: str
    market_id: str | None = None
    stall_id: str | None = None


def market_ids(config: FleetConfig) -> list[str]:
    """The fleet's market ids, in order."""
    if config.district is not None:
        return config.district.market_ids()
    return [f"{config.market_prefix}-{m:02d}" for m in range(1, config.markets + 1)]


class Fleet:
    """Readers publishing realistic strip results; see the module docstring.

    ``devices`` and ``strip_lots`` (with the thresholds the readings were drawn for, e.g. to seed
    the server's registry) are public.  One instance is not thread-safe: one per publishing thread.
    """

    def __init__(self, config: FleetConfig | None = None,
                 certificate_pool: Iterable[CertificateRef | tuple[str, ...]] | None = None) -> None:
        self.config = config or FleetConfig()
        self.rng = random.Random(self.config.seed)
        self.devices = _build_devices(self.config, self.rng)
        self.strip_lots = _build_strip_lots(self.config)
        self._lots_by_key: dict[tuple[str, str], list[StripLot]] = {}
        for lot in self.strip_lots:
            self._lots_by_key.setdefault((lot.analyte, lot.method), []).append(lot)
        # (market_id or None, commodity or category) -> lots; None: lots any market may sample
        self._pool: dict[tuple[str | None, str], list[CertificateRef]] = {}
        for item in certificate_pool or ():
            ref = CertificateRef(*item)
            self._pool.setdefault((ref.market_id, ref.commodity), []).append(ref)
            self._pool.setdefault((ref.market_id, f"category:{ref.category}"), []).append(ref)
        self._analyte_cum = _cumulative(_analyte_weights(self.config))
        self._commodity_cum = {
            a.code: (_cumulative([c[2] for c in a.commodities]), _cumulative([c[3] for c in a.commodities]))
            for a in ANALYTES}
        self._faults: list[Fault] = []
        self._sample_seq: dict[tuple[str, str], int] = {}

    def add_fault(self, fault: Fault) -> None:
        self._faults.append(fault)

    def gold_lots_by_use(self) -> list[str]:
        """The colloidal-gold strip lots, least used first: the last one sees the most strips."""
        weights = dict(zip((a.code for a in ANALYTES), _analyte_weights(self.config), strict=True))
        share = {a.code: weights[a.code] * (1 - self.config.enzyme_share if a.enzyme_screen else 1)
                 for a in ANALYTES}
        gold = [lot for lot in self.strip_lots if lot.method == "colloidal_gold"]
        return [lot.lot for lot in sorted(gold, key=lambda lot: (share[lot.analyte], lot.lot))]

    def reading(self, now: datetime) -> tuple[str, dict[str, Any]] | None:
        """One reading from a random reader measured at ``now``; None when a fault suppressed it."""
        device = self.rng.choice(self.devices)
        return self.reading_from(device, now)

    def reading_from(self, device: Device, now: datetime) -> tuple[str, dict[str, Any]] | None:
        """One reading from ``device``, passed through the fault hooks in the order they were added."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        payload = self._payload(device, now)
        for fault in self._faults:
            result = fault.apply(device.station_id, device.device_id, payload["assay"]["strip_lot"],
                                 payload, now)
            if result is None:
                return None
            payload = result
        return device.topic, payload

    def readings(self, count: int, start: datetime, step: timedelta = timedelta(seconds=1)
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``count`` readings (fewer when faults suppress some) on a clock advancing by ``step``."""
        for i in range(count):
            item = self.reading(start + i * step)
            if item is not None:
                yield item

    # --- one payload -------------------------------------------------------------------------

    def _payload(self, device: Device, now: datetime) -> dict[str, Any]:
        rng, cfg = self.rng, self.config
        verdict = self._draw_verdict()
        analyte = self._draw_analyte()
        enzyme = (analyte.enzyme_screen and verdict in (NEGATIVE, POSITIVE)
                  and rng.random() < cfg.enzyme_share)
        key = (ENZYME_ANALYTE, "enzyme_inhibition") if enzyme else (analyte.code, "colloidal_gold")
        lot = rng.choice(self._lots_by_key[key])
        local = now.astimezone(CHINA_TZ)
        sample = self._sample(device, analyte, verdict, local)
        device_result = verdict
        if rng.random() < cfg.disagreement_rate:
            device_result = self._disagreeing(verdict, enzyme)
        return {
            "schema": "rt.reading/1",
            "reading_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "measured_at": local.isoformat(timespec="seconds"),
            "sample": sample,
            "assay": self._assay(analyte.method_standard, lot),
            "signal": self._signal(verdict, lot),
            "device_result": device_result,
            "operator_id": rng.choice(device.operators),
            "firmware": device.firmware,
            "market_id": device.market_id,
            "station_id": device.station_id,
            "device_id": device.device_id,
        }

    def _draw_verdict(self) -> str:
        cfg = self.config
        return draw_verdict(self.rng, cfg.positive_rate, cfg.suspicious_rate, cfg.invalid_rate)

    def _draw_analyte(self) -> AnalyteProfile:
        return self.rng.choices(ANALYTES, cum_weights=self._analyte_cum)[0]

    def _disagreeing(self, verdict: str, enzyme: bool) -> str:
        if verdict != NEGATIVE:
            return NEGATIVE
        return POSITIVE if enzyme else self.rng.choice((POSITIVE, SUSPICIOUS))

    def _sample(self, device: Device, analyte: AnalyteProfile, verdict: str, local: datetime) -> dict[str, Any]:
        rng = self.rng
        cum = self._commodity_cum[analyte.code][verdict in (POSITIVE, SUSPICIOUS)]
        commodity, category, _, _ = rng.choices(analyte.commodities, cum_weights=cum)[0]
        day = f"{local.year:04d}{local.month:02d}{local.day:02d}"
        seq = self._sample_seq.get((device.station_id, day), 0) + 1
        self._sample_seq[(device.station_id, day)] = seq
        stall = rng.randrange(1, self.config.vendors_per_market + 1)
        sample: dict[str, Any] = {
            "sample_id": f"{device.station_id.upper()}-{day}-{seq:04d}",
            "commodity": commodity,
            "commodity_category": category,
            "vendor_id": f"{device.market_id}-stall-{stall:03d}",
        }
        ref = self._certificate(device.market_id, commodity, category)
        if ref is not None:
            sample.update(certificate_no=ref.certificate_no, lot_code=ref.lot_code, commodity=ref.commodity,
                          commodity_category=ref.category)
            if ref.stall_id:
                sample["vendor_id"] = ref.stall_id
        else:
            harvested = (local - timedelta(days=1)).strftime("%Y%m%d")
            sample["lot_code"] = f"L{harvested}-{rng.randrange(1, 20):02d}"
        return sample

    def _certificate(self, market_id: str, commodity: str, category: str) -> CertificateRef | None:
        """A lot of the same commodity (else category) at this market, else one any market may sample."""
        if not self._pool or self.rng.random() >= self.config.certificate_share:
            return None
        pool = self._pool
        same = (pool.get((market_id, commodity)) or pool.get((market_id, f"category:{category}"))
                or pool.get((None, commodity)) or pool.get((None, f"category:{category}")))
        return self.rng.choice(same) if same else None

    def _assay(self, method_standard: str | None, lot: StripLot) -> dict[str, Any]:
        rng = self.rng
        assay: dict[str, Any] = {"analyte": lot.analyte, "method": lot.method, "strip_lot": lot.lot}
        if lot.method == "enzyme_inhibition":
            assay["method_standard"] = ENZYME_STANDARD
            assay["incubation_s"] = 600
        else:
            if method_standard:
                assay["method_standard"] = method_standard
            assay["cutoff_ratio"] = lot.thresholds.r_pos
            assay["incubation_s"] = rng.choice((300, 300, 480, 600))
        assay["temperature_c"] = round(rng.uniform(19.5, 26.5), 1)
        return assay

    def _signal(self, verdict: str, lot: StripLot) -> dict[str, float]:
        if lot.method == "enzyme_inhibition":
            return {"inhibition_pct": inhibition(self.rng, verdict, lot.thresholds)}
        return lines(self.rng, verdict, lot.thresholds)


def _analyte_weights(cfg: FleetConfig) -> list[float]:
    """Each analyte's share: its group's share (87/8/5) times its weight inside the group."""
    share = dict(cfg.group_split)
    totals: dict[str, float] = {}
    for a in ANALYTES:
        totals[a.group] = totals.get(a.group, 0.0) + a.weight
    return [share.get(a.group, 0.0) * a.weight / totals[a.group] for a in ANALYTES]


def _cumulative(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _build_devices(cfg: FleetConfig, rng: random.Random) -> list[Device]:
    if cfg.district is not None:
        return _district_devices(cfg, cfg.district, rng)
    devices = []
    for m, market_id in enumerate(market_ids(cfg), start=1):
        for s in range(1, cfg.stations_per_market + 1):
            station_id = f"m{m:02d}-st{s:02d}"
            operators = tuple(f"op-{m:02d}{s:02d}{o}" for o in range(1, cfg.operators_per_station + 1))
            for r in range(1, cfg.readers_per_station + 1):
                firmware = rng.choice(("2.4.1", "2.4.1", "2.4.1", "2.4.0", "2.3.7"))
                device_id = f"rd-{m:02d}-{s:02d}-{r:02d}"
                devices.append(Device(market_id, station_id, device_id, firmware, operators))
    return devices


def _district_devices(cfg: FleetConfig, district: District, rng: random.Random) -> list[Device]:
    """``readers_per_station`` readers at every station of the district: ``{station_id}-R1`` ..."""
    devices = []
    for market in district.markets:
        for station in market.stations:
            operators = tuple(f"op-{station.station_id}-{o}" for o in range(1, cfg.operators_per_station + 1))
            for r in range(1, cfg.readers_per_station + 1):
                firmware = rng.choice(("2.4.1", "2.4.1", "2.4.1", "2.4.0", "2.3.7"))
                devices.append(Device(market.market_id, station.station_id, f"{station.station_id}-R{r}",
                                      firmware, operators))
    return devices


def _build_strip_lots(cfg: FleetConfig) -> list[StripLot]:
    lots = []
    for index, analyte in enumerate(ANALYTES):
        for n in range(1, cfg.lots_per_analyte + 1):
            lots.append(StripLot(f"CG2611-{index + 1:02d}{n:02d}", analyte.code, "colloidal_gold",
                                 cfg.thresholds))
    for n in range(1, cfg.lots_per_analyte + 1):
        lots.append(StripLot(f"EI2611-{n:02d}", ENZYME_ANALYTE, "enzyme_inhibition", cfg.thresholds))
    return lots
