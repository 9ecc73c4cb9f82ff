"""The simulated district: one county, 8 towns and 2 sub-districts (街道), 25 market stations and
22 village stations (DOMAIN.md §5 "Scale"), with Chinese names.

Pure data, no I/O.  ``rapidtrace up --simulate`` registers it (``runtime/registry_cli.seed_district``)
and the reader fleet publishes from its stations (``FleetConfig(district=DISTRICT)``).  Names follow
the district the project serves (武进区, county code 320412); the town and village codes are made up
in the shape of the statistical division codes (sub-districts 001-099, towns 100-199, villages 2xx).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.registry_rules import MarketKind

COUNTY_CODE = "320412"


@dataclass(frozen=True)
class SimTown:
    code: str  # 12 digits, village part 000
    name_zh: str
    name_en: str
    grids: int


@dataclass(frozen=True)
class SimVillage:
    code: str
    name_zh: str


@dataclass(frozen=True)
class SimStation:
    station_id: str
    name: str
    hours: dict[str, str | None]


@dataclass(frozen=True)
class SimMarket:
    market_id: str
    name_zh: str
    name_en: str
    kind: MarketKind
    region_code: str
    grid_id: str
    address: str
    stations: tuple[SimStation, ...]


@dataclass(frozen=True)
class District:
    county_code: str
    county_name: str
    towns: tuple[SimTown, ...]
    villages: tuple[SimVillage, ...]
    markets: tuple[SimMarket, ...]

    def market_ids(self) -> list[str]:
        return [m.market_id for m in self.markets]


def _every_day(span: str) -> dict[str, str | None]:
    return dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), span)


_HOURS = {
    MarketKind.WHOLESALE: _every_day("00:00-09:00"),  # night trading; results posted by 08:00
    MarketKind.FARMERS: _every_day("05:30-18:00"),
    MarketKind.SUPERMARKET: _every_day("08:00-21:00"),
    MarketKind.VILLAGE_STATION: {**_every_day("07:00-11:30"), "sun": None},
}

# (town suffix, name, English, grids): two sub-districts first, then the eight towns.
_TOWNS = (
    ("001", "南夏墅街道", "Nanxiashu Subdistrict", 3), ("002", "西湖街道", "Xihu Subdistrict", 3),
    ("101", "湖塘镇", "Hutang", 4), ("102", "牛塘镇", "Niutang", 2), ("103", "洛阳镇", "Luoyang", 2),
    ("104", "遥观镇", "Yaoguan", 2), ("105", "横林镇", "Henglin", 3), ("106", "横山桥镇", "Hengshanqiao", 2),
    ("107", "雪堰镇", "Xueyan", 2), ("108", "前黄镇", "Qianhuang", 2),
)

# (town suffix, market name, English, kind): 25 market stations.
_MARKETS = (
    ("101", "武进农产品批发市场", "Wujin Farm Produce Wholesale Market", MarketKind.WHOLESALE),
    ("105", "横林水产批发市场", "Henglin Aquatic Wholesale Market", MarketKind.WHOLESALE),
    ("101", "湖塘农贸市场", "Hutang Farmers' Market", MarketKind.FARMERS),
    ("101", "花园农贸市场", "Huayuan Farmers' Market", MarketKind.FARMERS),
    ("101", "延政农贸市场", "Yanzheng Farmers' Market", MarketKind.FARMERS),
    ("101", "大润发湖塘店", "RT-Mart Hutang", MarketKind.SUPERMARKET),
    ("001", "南夏墅农贸市场", "Nanxiashu Farmers' Market", MarketKind.FARMERS),
    ("001", "武宜农贸市场", "Wuyi Farmers' Market", MarketKind.FARMERS),
    ("002", "西湖农贸市场", "Xihu Farmers' Market", MarketKind.FARMERS),
    ("002", "永胜农贸市场", "Yongsheng Farmers' Market", MarketKind.FARMERS),
    ("002", "华润万家西湖店", "Vanguard Xihu", MarketKind.SUPERMARKET),
    ("102", "牛塘农贸市场", "Niutang Farmers' Market", MarketKind.FARMERS),
    ("102", "卢家巷农贸市场", "Lujiaxiang Farmers' Market", MarketKind.FARMERS),
    ("103", "洛阳农贸市场", "Luoyang Farmers' Market", MarketKind.FARMERS),
    ("103", "戴溪农贸市场", "Daixi Farmers' Market", MarketKind.FARMERS),
    ("104", "遥观农贸市场", "Yaoguan Farmers' Market", MarketKind.FARMERS),
    ("104", "剑湖农贸市场", "Jianhu Farmers' Market", MarketKind.FARMERS),
    ("105", "横林农贸市场", "Henglin Farmers' Market", MarketKind.FARMERS),
    ("105", "崔桥农贸市场", "Cuiqiao Farmers' Market", MarketKind.FARMERS),
    ("106", "横山桥农贸市场", "Hengshanqiao Farmers' Market", MarketKind.FARMERS),
    ("106", "芙蓉农贸市场", "Furong Farmers' Market", MarketKind.FARMERS),
    ("107", "雪堰农贸市场", "Xueyan Farmers' Market", MarketKind.FARMERS),
    ("107", "潘家农贸市场", "Panjia Farmers' Market", MarketKind.FARMERS),
    ("108", "前黄农贸市场", "Qianhuang Farmers' Market", MarketKind.FARMERS),
    ("108", "永辉超市前黄店", "Yonghui Qianhuang", MarketKind.SUPERMARKET),
)

# (town suffix, village): 22 village stations, none in the two sub-districts.
_VILLAGES = (
    ("101", "塘洋村"), ("101", "马杭村"), ("101", "城湾村"),
    ("102", "青云村"), ("102", "人民村"),
    ("103", "岑村"), ("103", "东王村"), ("103", "汤墅村"),
    ("104", "东方村"), ("104", "钱家塘村"),
    ("105", "崔桥村"), ("105", "新东村"), ("105", "西崦村"),
    ("106", "芙蓉村"), ("106", "五一村"),
    ("107", "城西回民村"), ("107", "雅浦村"), ("107", "太滆村"),
    ("108", "杨桥村"), ("108", "坊前村"), ("108", "南宅村"), ("108", "璜土村"),
)


def _build() -> District:
    towns = tuple(SimTown(f"{COUNTY_CODE}{t}000", name, en, grids) for t, name, en, grids in _TOWNS)
    by_suffix = {t.code[6:9]: t for t in towns}
    markets: list[SimMarket] = []
    per_town: dict[str, int] = {}
    for n, (suffix, name, en, kind) in enumerate(_MARKETS, start=1):
        town = by_suffix[suffix]
        per_town[suffix] = per_town.get(suffix, 0) + 1
        market_id = f"WJ-M{n:02d}"
        grid = f"WJ-{suffix}-G{(per_town[suffix] - 1) % town.grids + 1:02d}"
        markets.append(SimMarket(market_id, name, en, kind, town.code, grid, f"{town.name_zh}{name}",
                                 (SimStation(f"{market_id}-S1", f"{name}快检室", _HOURS[kind]),)))
    villages: list[SimVillage] = []
    seq: dict[str, int] = {}
    for n, (suffix, name) in enumerate(_VILLAGES, start=1):
        town = by_suffix[suffix]
        seq[suffix] = seq.get(suffix, 0) + 1
        code = f"{COUNTY_CODE}{suffix}{200 + seq[suffix]:03d}"
        villages.append(SimVillage(code, name))
        market_id = f"WJ-V{n:02d}"
        kind = MarketKind.VILLAGE_STATION
        markets.append(SimMarket(market_id, f"{name}快检点", f"{name} village station", kind, code,
                                 f"WJ-{suffix}-G{(seq[suffix] - 1) % town.grids + 1:02d}",
                                 f"{town.name_zh}{name}村委会", (SimStation(f"{market_id}-S1", f"{name}快检点",
                                                                         _HOURS[kind]),)))
    return District(COUNTY_CODE + "000000", "武进区", towns, tuple(villages), tuple(markets))


DISTRICT = _build()
