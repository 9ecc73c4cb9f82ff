"""Localized labels of workflow values (kinds, states) from the catalogues."""

from __future__ import annotations

from api.web.templating import translate
from domain import workflow


def kind_labels(lang: str) -> dict[str, str]:
    return {k.value: translate(lang, f"kind.{k.value}") for k in workflow.Kind}


def state_labels(lang: str) -> dict[str, str]:
    return {s.value: translate(lang, f"state.{s.value}") for s in workflow.State}
