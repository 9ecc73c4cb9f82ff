"""Reading an ``application/x-www-form-urlencoded`` body (no multipart: the console uploads no files)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from api.errors import ApiError

MAX_FORM_BYTES = 64 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """The form's fields (last value wins), stripped; 413 past 64 KiB, 415 for another content type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "a console form is sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "payload_too_large", "a console form is at most 64 KiB")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", "the form is not valid UTF-8 form data") from None
    return {k: v[-1].strip() for k, v in parsed.items() if "\x00" not in v[-1]}
