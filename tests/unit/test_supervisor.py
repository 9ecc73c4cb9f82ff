"""The supervisor's restart policy: say who died and how, back off, forget the backoff after a stable run."""

from __future__ import annotations

from pathlib import Path

from runtime.supervisor import Supervisor, Unit, backoff_s, describe_exit


class Fake:
    def __init__(self) -> None:
        self.up = True
        self.status: int | None = None
        self.starts = 0

    def restart(self) -> None:
        self.starts += 1
        self.up = True


def _unit(fake: Fake) -> Unit:
    return Unit("tansu", lambda: fake.up, lambda: fake.status, fake.restart, Path("tansu.log"), started_at=0.0)


def test_a_death_is_reported_with_its_status_and_restarted_after_the_backoff():
    said: list[str] = []
    fake = Fake()
    sup = Supervisor([_unit(fake)], stable_s=60, say=said.append)
    fake.up, fake.status = False, -9
    sup.tick(now=10.0)
    assert said == ["tansu died (killed by SIGKILL); restarting in 1s (log: tansu.log)"]
    sup.tick(now=10.5)
    assert fake.starts == 0
    sup.tick(now=11.0)
    assert fake.starts == 1 and said[-1] == "tansu restarted"


def test_the_backoff_grows_while_crashing_and_resets_after_a_stable_minute():
    fake = Fake()
    unit = _unit(fake)
    sup = Supervisor([unit], stable_s=60, say=lambda _: None)
    for _ in range(6):  # crash loop: each restart dies at once
        fake.up = False
        sup.tick(now=unit.started_at + 1)
        sup.tick(now=unit.restart_at or 0)
    assert unit.failures == 6 and backoff_s(unit.failures) == 30
    fake.up = False
    sup.tick(now=unit.started_at + 61)  # it had run for a minute
    assert unit.failures == 1 and unit.restart_at == unit.started_at + 61 + 1


def test_exit_statuses_read_as_words():
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(3) == "exit status 3"
