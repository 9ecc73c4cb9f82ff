"""The failures family's SQL lives in ``storage/failures.py``; the live feed's two reads are named here
for ``api/events.py``."""

from __future__ import annotations

from storage.failures import feed_after, latest_seq

__all__ = ["feed_after", "latest_seq"]
