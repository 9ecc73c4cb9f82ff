"""Dependencies of console pages: the session (or a redirect to log in) and role checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.web.console.session import ConsoleSession, current_session
from api.web.templating import DISPLAY_TZ


def _session(request: Request) -> ConsoleSession:
    return current_session(request)


def _regulator(session: Annotated[ConsoleSession, Depends(_session)]) -> ConsoleSession:
    if session.principal.role != "regulator":
        raise ApiError(403, "forbidden", "this page is for regulators")
    return session


Session = Annotated[ConsoleSession, Depends(_session)]
RegulatorSession = Annotated[ConsoleSession, Depends(_regulator)]


def local_midnight(now: datetime) -> datetime:
    """The start of today in the display zone (Asia/Shanghai), as a UTC instant."""
    local = now.astimezone(DISPLAY_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def hour_ceil(t: datetime) -> datetime:
    floor = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(hours=1)
