"""Who holds a lot, by the submitter's role (domain/custody.py)."""

from __future__ import annotations

import pytest

from domain.custody import Lot, custody_problems, holds
from schemas.certificate import (
    SUBMITTER_HEADER,
    SYSTEM_SUBMITTER,
    Route,
    Submitter,
    SubmitterRole,
    parse_certificate,
    submitter_of,
)
from simulators.certificates import record

FARM = Lot("O1", "coop-1", None)
AT_A = Lot("E1", "entry-A", "A")
AT_B = Lot("E2", "entry-B", "B")


def who(role: SubmitterRole, **kw: object) -> Submitter:
    return Submitter(role=role, name="x", route=Route.HTTP, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("submitter", "held"), [
    (who(SubmitterRole.REGULATOR), {"O1", "E1", "E2"}),
    (SYSTEM_SUBMITTER, {"O1", "E1", "E2"}),
    (who(SubmitterRole.PRODUCER, holder_id="coop-1"), {"O1"}),
    (who(SubmitterRole.PRODUCER, holder_id="coop-2"), set()),
    (who(SubmitterRole.OPERATOR, markets=("A",)), {"E1"}),
    (who(SubmitterRole.ENTRY_SCANNER, markets=("A",)), {"O1", "E1"}),  # in transit, or already at A
])
def test_who_holds_what(submitter: Submitter, held: set[str]) -> None:
    assert {lot.certificate_no for lot in (FARM, AT_A, AT_B) if holds(submitter, lot)} == held


def test_problems_name_the_lot_its_holder_and_the_submitter() -> None:
    rec = parse_certificate(record("S1", "split", holder="stall", role="vendor", quantity=1, parents=["E2"],
                                   market_id="A", supersedes="E1"))
    problems = custody_problems(rec, who(SubmitterRole.OPERATOR, markets=("A",)), {"E2": AT_B}, AT_A)
    assert [p.code.value for p in problems] == ["certificate_not_holder"]
    assert problems[0].reason == "E2 is held by entry-B at market B; operator 'x' (markets A) via http may not move it"
    stranger = custody_problems(rec, who(SubmitterRole.PRODUCER, holder_id="c"), {"E2": AT_B}, AT_A)
    assert len(stranger) == 2 and "only its holder (or a regulator) may correct it" in stranger[1].reason


def test_the_submitter_travels_in_headers() -> None:
    sub = who(SubmitterRole.OPERATOR, markets=("A", "B"))
    assert submitter_of([sub.header()]) == sub
    assert submitter_of(None) == SYSTEM_SUBMITTER
    scanner = submitter_of([("mqtt_topic", b"rt/v1/markets/M07/entry/gate-1/certificates")])
    assert scanner.role is SubmitterRole.ENTRY_SCANNER and scanner.markets == ("M07",)
    with pytest.raises(ValueError, match="unreadable"):
        submitter_of([(SUBMITTER_HEADER, b"{")])
    with pytest.raises(ValueError, match="entry scanner"):
        submitter_of([("mqtt_topic", b"rt/v1/markets/M07/stations/S/devices/D/readings")])
