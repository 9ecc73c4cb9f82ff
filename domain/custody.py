"""Chain of custody: who may move a lot, and who may correct a record.  Pure: no I/O.

A hand-off, split or merge consumes its parent lots, so it may only come from whoever holds
them; a correction (``supersedes``) only from the holder of the record it corrects. The new
record itself may name another holder: the giver documents the transfer (a producer hands its
lot to a collector, who then holds it and may split or merge it in turn).

Who "holds" a lot, by the submitter's role:

- regulator, and ``system`` (trusted in-house processes writing to Kafka): every lot;
- producer (any holder with its own token: farms, collectors, wholesalers): lots whose holder id is its own;
- operator: lots located at one of its markets;
- entry scanner of market M: lots located at M, and lots at no market (in transit), which is
  what arrives at a market's entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.chain import Problem, Rejection
from schemas.certificate import CertificateRecord, Submitter, SubmitterRole


@dataclass(frozen=True)
class Lot:
    """Whose a stored record's lot is: its holder and where it is."""

    certificate_no: str
    holder_id: str
    market_id: str | None

    def describe(self) -> str:
        where = f" at market {self.market_id}" if self.market_id else ""
        return f"{self.certificate_no} is held by {self.holder_id}{where}"


def holds(submitter: Submitter, lot: Lot) -> bool:
    """Does ``submitter`` hold ``lot`` (may move or correct it)?"""
    role = submitter.role
    if role in (SubmitterRole.REGULATOR, SubmitterRole.SYSTEM):
        return True
    if role is SubmitterRole.PRODUCER:
        return submitter.holder_id is not None and lot.holder_id == submitter.holder_id
    markets = submitter.markets or ()
    if role is SubmitterRole.OPERATOR:
        return lot.market_id is not None and lot.market_id in markets
    return lot.market_id is None or lot.market_id in markets  # an entry scanner


def custody_problems(rec: CertificateRecord, submitter: Submitter, parents: Mapping[str, Lot],
                     corrected: Lot | None) -> list[Rejection]:
    """``certificate_not_holder`` rejections: parents the submitter does not hold, or a record it corrects
    without holding it.  ``parents`` has every parent of ``rec``; ``corrected`` is the record it supersedes."""
    out = [Rejection(Problem.NOT_HOLDER, f"{lot.describe()}; {submitter.describe()} may not move it")
           for lot in (parents[p.certificate_no] for p in rec.parents) if not holds(submitter, lot)]
    if corrected is not None and not holds(submitter, corrected):
        out.append(Rejection(Problem.NOT_HOLDER, f"{corrected.describe()}; only its holder (or a regulator) may "
                             f"correct it, not {submitter.describe()}"))
    return out
