"""Rows to PostgreSQL ``COPY … FROM STDIN`` text format (the fastest way in, measured in MEASURED.md).

``None`` is ``\\N``; strings have backslash, tab, newline and carriage return
escaped; anything else is written with ``str()``.  The per-field work is
inlined in one comprehension: a function call per field cost a third of the
reading store's CPU.  Most strings need no escape, and asking (``isprintable``
and no backslash: 120 ns) is ten times cheaper than ``translate`` (1.1 µs).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


def copy_buffer(rows: Iterable[Sequence[object]]) -> io.StringIO:
    esc, null = _ESCAPES, "\\N"
    buf = io.StringIO()
    buf.writelines(
        "\t".join([
            null if v is None
            else (v if v.isprintable() and "\\" not in v else v.translate(esc)) if isinstance(v, str)
            else str(v)
            for v in row
        ]) + "\n"
        for row in rows
    )
    buf.seek(0)
    return buf
