"""The ``rt.deadletter.v1`` value every producer of dead letters writes (bridge, consumers, API)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from schemas.common import rfc3339, utc_now


def deadletter_value(
    source: str,
    source_topic: str,
    raw: bytes,
    code: str,
    reason: str,
    received_at: datetime | None = None,
) -> bytes:
    """A ``rt.deadletter.v1`` value: the raw bytes, where they came from, why, and when."""
    return json.dumps(
        {
            "v": 1,
            "source": source,
            "source_topic": source_topic,
            "code": code,
            "reason": reason,
            "received_at": rfc3339(received_at or utc_now()),
            "raw_b64": base64.b64encode(raw).decode("ascii"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
