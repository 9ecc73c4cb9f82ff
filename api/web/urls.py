"""URL helpers shared by the HTML routes."""

from __future__ import annotations


def safe_next(target: str | None, default: str = "/console/") -> str:
    """A same-site path to go back to (never another host: ``//x`` or ``/\\x`` are refused)."""
    if not target or not target.startswith("/") or any(c in target for c in "\r\n\\"):
        return default
    if target.startswith("//"):
        return default
    return target
