"""Progress of long commands: a rich bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from simulators.progress import BarProgress, LineProgress, open_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_plain_lines_with_rate_and_eta():
    out = io.StringIO()
    with open_progress("simulate", 100, unit="msgs", stream=out, every_s=0) as bar:
        assert isinstance(bar, LineProgress)
        bar.update(40, "outstanding 3")
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("simulate: ") for line in lines)
    assert "40/100 msgs" in lines[0] and "rate" in lines[0] and "ETA" in lines[0] and "outstanding 3" in lines[0]


def test_a_terminal_gets_a_bar():
    out = _Tty()
    with open_progress("bench", 10, stream=out) as bar:
        assert isinstance(bar, BarProgress)
        bar.update(10)
    assert "bench" in out.getvalue() and "10/10" in out.getvalue()
