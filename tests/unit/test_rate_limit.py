"""The per-token rate limiter of api/auth.py (token buckets on an injected clock)."""

from __future__ import annotations

import pytest

from api.auth import RateLimiter
from domain.access import TokenRequestError, hash_token, new_token, token_scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_of_ten_seconds_then_steady_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert [limiter.acquire("t", 60) for _ in range(10)] == [0.0] * 10  # 60/min: a burst of 10
    wait = limiter.acquire("t", 60)
    assert wait == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.acquire("t", 60) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("t", 60) == 0.0
    assert limiter.acquire("other", 60) == 0.0  # buckets are per token


def test_slow_token_has_a_bucket_of_one() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.acquire("t", 6) == 0.0
    assert limiter.acquire("t", 6) == pytest.approx(10.0)
    clock.now += 10
    assert limiter.acquire("t", 6) == 0.0


def test_tokens_are_random_and_hashed() -> None:
    a, b = new_token(), new_token()
    assert a != b and a.startswith("rtk_") and len(a) >= 46
    assert len(hash_token(a)) == 32 and hash_token(a) != hash_token(b)


@pytest.mark.parametrize(("role", "markets", "holder"), [
    ("operator", None, None), ("operator", [], None), ("operator", ["m/1"], None), ("producer", None, None),
    ("producer", None, "bad id"), ("regulator", ["m1"], None), ("regulator", None, "h1"), ("admin", None, None),
])
def test_scope_must_fit_the_role(role: str, markets: list[str] | None, holder: str | None) -> None:
    with pytest.raises(TokenRequestError):
        token_scope(role, markets, holder)


def test_operator_markets_are_deduplicated() -> None:
    assert token_scope("operator", ["m2", "m1", "m2"], None) == ["m1", "m2"]
    assert token_scope("producer", None, "coop-a") is None
