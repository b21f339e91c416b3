"""Send-time optimisation: each subscriber's best local hour to hear from a brand, learned
from when their past messages were delivered and which of them they clicked.

The model: everyone has an hour of the day at which they are most engaged (their peak), and
how likely they are to click falls off with the distance from it, by a curve the same for
everyone. Neither is observed. A fit learns, by expectation-maximisation over the brand's
deliveries and clicks per local hour:

- the **curve**: the click rate at 0, 1, ... 12 hours from someone's peak;
- the **brand's peaks**: how its subscribers' peaks spread over the day (shrunk toward
  everyone's — every brand's latest model — by `PEAKS_PRIOR` pseudo-subscribers, so a small
  brand borrows the install's pattern);
- **each subscriber's peak**, as a posterior over the 24 hours: the brand's spread, moved by
  their own clicks and non-clicks. One click at 19:00 moves it toward the evening; many
  place it. A subscriber with no history is the brand's spread itself.

A subscriber's expected click rate at each hour is then the curve averaged over their
posterior; their hours are ranked by it, and a campaign takes the first that falls in its
window and in the compliance window (`best_moment`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

import numpy as np
from numpy.typing import NDArray

HOURS = 24
DISTANCES = HOURS // 2 + 1  # 0 ... 12 hours from a peak, on the 24-hour circle
ITERATIONS = 30
PEAKS_PRIOR = 50.0  # pseudo-subscribers of everyone's spread of peaks in the brand's
# The federal window (47 CFR §64.1200(c)(1)): a best time is an hour from 08:00 to 20:00
# local (a message at 20:xx is before 21:00). State rules narrow it further at the gate.
ALLOWED_HOURS = range(8, 21)

Array = NDArray[np.float64]
_DISTANCE = np.array(
    [[min(abs(h - k), HOURS - abs(h - k)) for h in range(HOURS)] for k in range(HOURS)]
)  # [peak, hour] → hours apart


@dataclass(frozen=True)
class Totals:
    """Deliveries and clicks per local hour (24 each), and the spread of peaks (24, summing
    to 1; uniform when nothing is known)."""

    sends: tuple[float, ...]
    clicks: tuple[float, ...]
    peaks: tuple[float, ...] = (1 / HOURS,) * HOURS

    @staticmethod
    def empty() -> Totals:
        return Totals((0.0,) * HOURS, (0.0,) * HOURS)


@dataclass(frozen=True)
class SendTimes:
    """What a fit learned: each subscriber's hours best first (those with a history), the
    brand's order for everyone else, the curve and the spread of peaks."""

    subscriber_ids: NDArray[np.int64]
    ranked: NDArray[np.int16]  # one row of 24 hours per subscriber, best first
    brand_ranked: tuple[int, ...]
    brand_rates: tuple[float, ...]  # the expected click rate per hour, a newcomer's
    peaks: tuple[float, ...]
    curve: tuple[float, ...]  # click rate by hours from the peak
    totals: Totals
    messages: int
    clicks: int


def fit(rows: Iterable[tuple[int, int, int, int]], everyone: Sequence[Totals] = ()) -> SendTimes:
    """Fit on (subscriber id, local hour, deliveries, clicks) rows — a subscriber's rows one
    per hour they had deliveries at — and the other brands' latest totals (`everyone`)."""
    ids: dict[int, int] = {}
    sub, hour, sends, clicks = [], [], [], []
    for sid, h, n, c in rows:
        sub.append(ids.setdefault(sid, len(ids)))
        hour.append(h % HOURS)
        sends.append(n)
        clicks.append(c)
    s = np.zeros((len(ids), HOURS))
    c_ = np.zeros((len(ids), HOURS))
    if sub:
        at = (np.array(sub), np.array(hour))
        np.add.at(s, at, np.array(sends, dtype=float))
        np.add.at(c_, at, np.array(clicks, dtype=float))
    prior = _everyones_peaks(everyone)
    posterior, peaks, curve = _em(s, c_, prior)
    rates_by_peak = curve[_DISTANCE]  # [peak, hour]
    brand_rates = peaks @ rates_by_peak
    brand_order = np.argsort(-brand_rates, kind="stable")
    ranked = np.empty((len(ids), HOURS), dtype=np.int16)
    if ids:
        expected = posterior @ rates_by_peak  # [subscriber, hour]
        # ties keep the brand's order
        brand_rank = np.argsort(brand_order, kind="stable")
        order = np.lexsort((np.broadcast_to(brand_rank, expected.shape), -expected), axis=1)
        ranked[:] = order.astype(np.int16)
    totals = Totals(
        tuple(s.sum(axis=0).tolist()), tuple(c_.sum(axis=0).tolist()), tuple(peaks.tolist())
    )
    return SendTimes(
        subscriber_ids=np.array(list(ids), dtype=np.int64),
        ranked=ranked,
        brand_ranked=tuple(int(h) for h in brand_order),
        brand_rates=tuple(float(r) for r in brand_rates),
        peaks=tuple(float(p) for p in peaks),
        curve=tuple(float(r) for r in curve),
        totals=totals,
        messages=int(s.sum()),
        clicks=int(c_.sum()),
    )


def _everyones_peaks(everyone: Sequence[Totals]) -> Array:
    """The spread of peaks over every other brand, weighted by their messages (uniform
    when there are none)."""
    weights = np.array([sum(t.sends) for t in everyone], dtype=float)
    if not len(everyone) or weights.sum() <= 0:
        return np.full(HOURS, 1 / HOURS)
    spread: Array = weights @ np.array([t.peaks for t in everyone])
    normalised: Array = spread / spread.sum()
    return normalised


def _em(s: Array, c: Array, prior: Array) -> tuple[Array, Array, Array]:
    """(each subscriber's posterior over their peak, the brand's spread of peaks, the curve)
    by expectation-maximisation from deliveries `s` and clicks `c` per subscriber and hour."""
    n = s.shape[0]
    base = float(c.sum() / s.sum()) if s.sum() else 0.05
    base = min(max(base, 1e-4), 0.5)
    # a start: a bump of a few hours around the peak, the curve's shape left to the data
    curve = base * (0.5 + 1.5 * np.exp(-(np.arange(DISTANCES) ** 2) / 4.5))
    peaks = prior.copy()
    posterior = np.broadcast_to(peaks, (n, HOURS)).copy()
    for _ in range(ITERATIONS if n else 0):
        rates = np.clip(curve[_DISTANCE], 1e-6, 1 - 1e-6)  # [peak, hour]
        log_like = c @ np.log(rates).T + (s - c) @ np.log1p(-rates).T + np.log(peaks + 1e-12)
        log_like -= log_like.max(axis=1, keepdims=True)
        posterior = np.exp(log_like)
        posterior /= posterior.sum(axis=1, keepdims=True)
        peaks = (posterior.sum(axis=0) + PEAKS_PRIOR * prior) / (n + PEAKS_PRIOR)
        # the curve: clicks over deliveries at each distance, every subscriber's peaks
        # weighted by their posterior (one pseudo-delivery at the overall rate keeps an
        # unseen distance from zero)
        clicked = np.zeros(DISTANCES)
        delivered = np.zeros(DISTANCES)
        np.add.at(clicked, _DISTANCE, posterior.T @ c)
        np.add.at(delivered, _DISTANCE, posterior.T @ s)
        curve = (clicked + base) / (delivered + 1.0)
    return posterior, peaks, curve


# --- when a campaign sends to each subscriber -----------------------------------------------


def best_moment(
    ranked: Sequence[int],
    zone: tzinfo | None,
    start: datetime,
    window_h: float,
    subscriber_id: int,
    allowed: range = ALLOWED_HOURS,
) -> datetime:
    """The moment within `window_h` hours of `start` at the subscriber's best local hour that
    the window and the compliance window allow (`start` itself when none is, or the zone is
    not known: the gate then decides). Within the hour, a minute fixed by the subscriber's
    id spreads a popular hour's sends over it."""
    if zone is None:
        return start
    end = start + timedelta(hours=window_h)
    local_start = start.astimezone(zone)
    spread = timedelta(seconds=zlib.crc32(subscriber_id.to_bytes(8, "big")) % 3300)
    for h in ranked:
        if h not in allowed:
            continue
        day = local_start.date()
        for _ in range(2 + int(window_h // 24)):
            at = datetime.combine(day, time(h), tzinfo=zone) + spread
            top = datetime.combine(day, time(h), tzinfo=zone) + timedelta(hours=1)
            if top > start and at < end:
                return max(at, start)
            day += timedelta(days=1)
    return start


def moments(
    known: Mapping[int, Sequence[int]],
    brand_hours: Sequence[int],
    recipients: Iterable[tuple[int, tzinfo | None]],
    *,
    start: datetime,
    window_h: float,
) -> dict[int, datetime]:
    """Each (subscriber id, zone)'s moment: at their hours, best first (`known`), or the
    brand's for a subscriber the model has no history of."""
    return {
        sid: best_moment(known.get(sid, brand_hours), zone, start, window_h, sid)
        for sid, zone in recipients
    }


def brand_hours(summary: Mapping[str, Any]) -> list[int]:
    """The brand's hours, best first, from a send-time model's summary."""
    hours = summary.get("brand_hours")
    if isinstance(hours, list) and len(hours) == HOURS:
        return [int(h) for h in hours]
    return list(range(HOURS))
