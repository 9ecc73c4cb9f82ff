"""A re-export for ``bench/flagging.py`` only (its owner moves the import to :mod:`storage.stats`; then delete this
package). Everything else imports :mod:`storage.stats`."""

from __future__ import annotations

from storage.stats import Bucket, GroupBy, StatsQuery, pass_rate_rows

__all__ = ["Bucket", "GroupBy", "StatsQuery", "pass_rate_rows"]
