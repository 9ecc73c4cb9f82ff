"""Consumers by name, for ``rapidtrace consume NAME...`` (import strings keep start-up lazy)."""

from __future__ import annotations

import importlib
from typing import cast

from consumers.runner import Handler
from schemas.settings import Settings

CONSUMERS: dict[str, str] = {
    "store": "consumers.reading_store:ReadingStore",
    "deadletters": "consumers.deadletter_store:DeadletterStore",
    "flagger": "consumers.flagger:Flagger",
    "chain": "consumers.chain_store:ChainStore",
    "readings": "consumers.store_and_judge:StoreAndJudge",  # store + flagger in one group and transaction
}


def build(name: str, settings: Settings) -> Handler:
    try:
        target = CONSUMERS[name]
    except KeyError:
        raise ValueError(f"unknown consumer {name!r}; choose from {', '.join(CONSUMERS)}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cast(Handler, cls(settings))
