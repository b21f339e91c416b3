"""The per-key token bucket of the API."""

from __future__ import annotations

from clarion.api.ratelimit import RateLimiter, retry_after


def test_a_key_may_spend_its_burst_then_waits_for_its_rate() -> None:
    limiter = RateLimiter(burst_s=2.0)
    allowed = [limiter.take(1, 5.0, now_s=100.0) for _ in range(12)]
    assert allowed[:10] == [0.0] * 10  # 2 s of 5 a second
    assert abs(allowed[10] - 0.2) < 1e-9  # one token comes in 0.2 s
    assert limiter.take(1, 5.0, now_s=100.2) == 0.0
    assert limiter.take(1, 5.0, now_s=100.2) > 0


def test_keys_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(burst_s=1.0)
    assert limiter.take(1, 1.0, now_s=0.0) == 0.0
    assert limiter.take(1, 1.0, now_s=0.0) > 0
    assert limiter.take(2, 1.0, now_s=0.0) == 0.0


def test_a_refused_request_is_not_counted() -> None:
    limiter = RateLimiter(burst_s=1.0)
    limiter.take(1, 1.0, now_s=0.0)
    for _ in range(100):
        limiter.take(1, 1.0, now_s=0.5)  # refused: no debt builds up
    assert limiter.take(1, 1.0, now_s=1.0) == 0.0


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after(0.01) == "1"
    assert retry_after(1.2) == "2"
