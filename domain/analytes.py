"""The analyte catalogue (DOMAIN.md §2), shipped as seed data in ``domain/data/analytes.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Analyte:
    code: str
    name_zh: str
    name_en: str
    analyte_class: str
    categories: tuple[str, ...]
    commodities: tuple[str, ...]
    method_standards: tuple[str, ...]
    lab_standards: tuple[str, ...]
    banned: bool
    notes: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "class": self.analyte_class,
            "categories": list(self.categories),
            "commodities": list(self.commodities),
            "method_standards": list(self.method_standards),
            "lab_standards": list(self.lab_standards),
            "banned": self.banned,
            "notes": self.notes,
        }


def _analyte(row: dict[str, Any]) -> Analyte:
    return Analyte(
        code=row["code"],
        name_zh=row["name_zh"],
        name_en=row["name_en"],
        analyte_class=row["class"],
        categories=tuple(row["categories"]),
        commodities=tuple(row["commodities"]),
        method_standards=tuple(row["method_standards"]),
        lab_standards=tuple(row["lab_standards"]),
        banned=bool(row["banned"]),
        notes=row["notes"],
    )


@cache
def catalogue() -> dict[str, Analyte]:
    """Every known analyte by code, in the file's order."""
    text = resources.files("domain").joinpath("data/analytes.json").read_text(encoding="utf-8")
    return {row["code"]: _analyte(row) for row in json.loads(text)["analytes"]}


def get(code: str) -> Analyte | None:
    return catalogue().get(code)
