"""Localized labels of workflow values (kinds, states, actions, evidence fields) from the catalogues."""

from __future__ import annotations

from api.web.templating import translate
from domain import workflow


def kind_labels(lang: str) -> dict[str, str]:
    return {k.value: translate(lang, f"kind.{k.value}") for k in workflow.Kind}


def state_labels(lang: str) -> dict[str, str]:
    return {s.value: translate(lang, f"state.{s.value}") for s in workflow.State}


def action_label(lang: str, action: str) -> str:
    return translate(lang, f"action.{action}")


def evidence_label(lang: str, name: str) -> str:
    return translate(lang, f"evidence.{name}")
