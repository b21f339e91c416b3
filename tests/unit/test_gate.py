"""The compliance gate: never send without current consent or outside the window.

Property tests generate subscribers across zones and states, consent histories built from
inbound replies (through the real keyword classifier and inbound core), and send times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from clarion.compliance.gate import Action, GateInput, Reason, decide
from clarion.compliance.keywords import classify_inbound
from clarion.compliance.windows import sending_window
from clarion.domain.brands import BrandInfo
from clarion.domain.records import OutboundMessage
from clarion.pipeline.inbound import respond
from clarion.pipeline.send import gate_batch

NY, FL, OK, AL, RI, LA_CA, HI = (
    "+12125557788", "+13055557788", "+14055557788", "+12055557788", "+14015557788",
    "+13105557788", "+18085557788",
)  # fmt: skip
PHONES = [NY, FL, OK, AL, RI, LA_CA, HI, "+19075557788", "+16025557788", "+17025557788"]
ZONES = [None, "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
         "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu"]  # fmt: skip
WEDNESDAY_NOON_NY = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
BRAND = BrandInfo(id=1, name="Northwind", sender="+15125550100")

instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def gate(phone: str = NY, **kw: object) -> GateInput:
    values: dict[str, object] = {"phone": phone, "at": WEDNESDAY_NOON_NY, "consent": "opted_in"}
    values.update(kw)
    return GateInput(**values)  # type: ignore[arg-type]


def test_a_consented_subscriber_at_noon_on_a_weekday_is_sent_to() -> None:
    assert decide(gate()).action is Action.SEND


def test_checks_apply_strictest_reason_first() -> None:
    expired = WEDNESDAY_NOON_NY - timedelta(seconds=1)
    assert decide(gate(expires_at=expired, consent="opted_out")).reason is Reason.EXPIRED
    assert decide(gate(consent="opted_out", suppression="landline")).reason is Reason.OPTED_OUT
    assert decide(gate(consent=None)).reason is Reason.NO_CONSENT
    assert decide(gate(consent="pending")).reason is Reason.NO_CONSENT
    assert decide(gate(suppression="landline")).reason is Reason.SUPPRESSED


def test_smart_sending_skips_a_subscriber_messaged_within_the_window() -> None:
    recent = [WEDNESDAY_NOON_NY - timedelta(hours=15)]
    assert decide(gate(recent_sends=recent)).reason is Reason.FREQUENCY_CAPPED
    older = [WEDNESDAY_NOON_NY - timedelta(hours=17)]
    assert decide(gate(recent_sends=older)).action is Action.SEND
    assert decide(gate(recent_sends=recent, smart_sending_h=0)).action is Action.SEND


def test_florida_oklahoma_and_maryland_cap_three_messages_a_day() -> None:
    three = [WEDNESDAY_NOON_NY - timedelta(hours=h) for h in (1, 5, 9)]
    for phone in (FL, OK, "+14105557788"):
        d = decide(gate(phone, recent_sends=three, smart_sending_h=0))
        assert d.reason is Reason.STATE_CAP
    assert decide(gate(NY, recent_sends=three, smart_sending_h=0)).action is Action.SEND
    two = three[:2]
    assert decide(gate(FL, recent_sends=two, smart_sending_h=0)).action is Action.SEND


def test_outside_the_window_a_message_is_deferred_to_the_next_allowed_moment() -> None:
    night = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 02:00 in New York
    d = decide(gate(at=night))
    assert d.action is Action.DEFER
    assert d.reason is Reason.QUIET_HOURS
    assert d.not_before == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_a_deferral_that_would_pass_the_expiry_drops_the_message_as_expired() -> None:
    night = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    d = decide(gate(at=night, expires_at=night + timedelta(hours=2)))
    assert (d.action, d.reason) == (Action.DROP, Reason.EXPIRED)


def test_a_sunday_in_alabama_waits_for_monday() -> None:
    sunday_noon = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    d = decide(gate(AL, at=sunday_noon))
    assert d.action is Action.DEFER
    assert d.not_before == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # Monday 08:00 CST


def consent_after(replies: list[str], initial: str | None) -> list[str | None]:
    """Consent after each inbound reply, through the real classifier and inbound core."""
    consent, history = initial, []
    for text in replies:
        r = respond(classify_inbound(text), text, known=True, consent=consent, brand=BRAND)
        if r.consent is not None:
            consent = r.consent
        history.append(consent)
    return history


REPLIES = st.sampled_from(
    ["STOP", "stop.", "Unsubscribe me", "please stop texting me", "START", "Y", "yes", "HELP",
     "when does the sale end?", "the stopwatch I ordered", "UNSTOP", "quit", "JOIN"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(
    phone=st.sampled_from(PHONES),
    zone=st.sampled_from(ZONES),
    initial=st.sampled_from(["opted_in", "opted_out", "pending", None]),
    replies=st.lists(REPLIES, max_size=6),
    cut=st.integers(min_value=0, max_value=6),
    at=instants,
    recent_h=st.lists(st.floats(min_value=0, max_value=48), max_size=4),
    suppressed=st.booleans(),
    expiry_h=st.one_of(st.none(), st.floats(min_value=-1, max_value=24)),
)
def test_no_message_is_ever_sent_without_current_consent_or_outside_the_window(
    phone: str,
    zone: str | None,
    initial: str | None,
    replies: list[str],
    cut: int,
    at: datetime,
    recent_h: list[float],
    suppressed: bool,
    expiry_h: float | None,
) -> None:
    # replies up to `cut` have arrived (mid-campaign) when the gate checks
    history = consent_after(replies[:cut], initial)
    consent = history[-1] if history else initial
    expires_at = at + timedelta(hours=expiry_h) if expiry_h is not None else None
    d = decide(
        GateInput(
            phone=phone,
            at=at,
            consent=consent,
            suppression="landline" if suppressed else None,
            recent_sends=[at - timedelta(hours=h) for h in recent_h],
            timezone=zone,
            expires_at=expires_at,
        )
    )
    window = sending_window(phone, at, tz=zone)
    if d.action is Action.SEND:
        assert consent == "opted_in"
        assert not suppressed
        assert window.allowed
        assert expires_at is None or at < expires_at
    elif d.action is Action.DEFER:
        assert consent == "opted_in"
        assert not window.allowed
        assert d.not_before is not None
        assert d.not_before > at
        assert sending_window(phone, d.not_before, tz=zone).allowed
        assert expires_at is None or d.not_before < expires_at
    else:
        assert d.reason is not None


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(PHONES),
            st.sampled_from(ZONES),
            st.sampled_from(["opted_in", "opted_out", "pending", None]),
            st.booleans(),
        ),
        min_size=1,
        max_size=40,
    ),
    at=instants,
)
def test_a_batch_accounts_for_every_message_exactly_once(
    rows: list[tuple[str, str | None, str | None, bool]], at: datetime
) -> None:
    messages = [
        OutboundMessage(message_id=f"m{i}", subscriber_id=i, to=p, body="x", segments=1, timezone=z)
        for i, (p, z, _, _) in enumerate(rows, start=1)
    ]
    consent = {i: c for i, (_, _, c, _) in enumerate(rows, start=1) if c is not None}
    suppressed = {p: "landline" for (p, _, _, s) in rows if s}
    out = gate_batch(
        messages, at=at, consent=consent, suppressed=suppressed, recent_sends={},
        expires_at=None, smart_sending_h=16,
    )  # fmt: skip
    ids = [m.message_id for m in out.send] + [d[0] for d in out.drops] + [d[0] for d in out.defers]
    assert sorted(ids) == sorted(m.message_id for m in messages)
    for m in out.send:
        assert m.subscriber_id is not None
        assert consent.get(m.subscriber_id) == "opted_in"
        assert m.to not in suppressed
        assert sending_window(m.to, at, tz=m.timezone).allowed
    for _, status, reason, _ in out.drops:
        assert status in ("suppressed", "expired")
        assert reason in {r.value for r in Reason}


# Numbers sharing an exchange, other exchanges of the same area code, a non-geographic
# number and numbers outside the US: the batch's shared decisions must never cross them.
# 850: one area code, two zones (+1850200 is Central, +1850201 Eastern).
SAME_PLACE = ["+12125557788", "+12125550001", "+12125550002", "+12126660001", "+18502005555",
              "+18502015555", "+18005550199", "+442079460000", "+33142685300",
              "not a number"]  # fmt: skip
# A Wednesday 13:30 UTC: 8:30 in New York, 7:30 in Chicago, 5:30 in Los Angeles.
EARLY_EAST = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(PHONES + SAME_PLACE),
            st.sampled_from(ZONES),
            st.sampled_from(["opted_in", "opted_in", "opted_in", "opted_out", "pending", None]),
            st.booleans(),  # suppressed
            st.lists(st.integers(min_value=1, max_value=30), max_size=4),  # sends, hours ago
        ),
        min_size=1,
        max_size=60,
    ),
    at=instants,
    expires_in_h=st.one_of(st.none(), st.integers(min_value=-2, max_value=72)),
)
@example(
    rows=[("+12125557788", z, "opted_in", False, []) for z in ZONES],
    at=EARLY_EAST,
    expires_in_h=None,
)
@example(
    rows=[(p, None, "opted_in", False, []) for p in ("+18502015555", "+18502005555")],
    at=EARLY_EAST,
    expires_in_h=None,
)
def test_a_batch_decides_each_message_as_decide_does(
    rows: list[tuple[str, str | None, str | None, bool, list[int]]],
    at: datetime,
    expires_in_h: int | None,
) -> None:
    """The batch shares one decision among messages of the same zone and number prefix:
    every message still gets exactly what `decide` says for it alone."""
    messages = [
        OutboundMessage(message_id=f"m{i}", subscriber_id=i, to=p, body="x", segments=1, timezone=z)
        for i, (p, z, _, _, _) in enumerate(rows, start=1)
    ]
    consent = {i: c for i, (_, _, c, _, _) in enumerate(rows, start=1) if c is not None}
    suppressed = {p: "landline" for (p, _, _, s, _) in rows if s}
    recent = {
        i: [at - timedelta(hours=h) for h in hours]
        for i, (_, _, _, _, hours) in enumerate(rows, start=1)
        if hours
    }
    expires_at = at + timedelta(hours=expires_in_h) if expires_in_h is not None else None
    out = gate_batch(
        messages, at=at, consent=consent, suppressed=suppressed, recent_sends=recent,
        expires_at=expires_at, smart_sending_h=16,
    )  # fmt: skip
    got: dict[str, tuple[object, ...]] = {m.message_id: ("send",) for m in out.send}
    got.update({d[0]: ("drop", d[1], d[2], d[3]) for d in out.drops})
    got.update({d[0]: ("defer", d[1], d[2]) for d in out.defers})
    for m in messages:
        assert m.subscriber_id is not None
        d = decide(
            GateInput(
                phone=m.to, at=at, consent=consent.get(m.subscriber_id),
                suppression=suppressed.get(m.to), recent_sends=recent.get(m.subscriber_id, ()),
                timezone=m.timezone, expires_at=expires_at, smart_sending_h=16,
            )
        )  # fmt: skip
        if d.action is Action.SEND:
            want: tuple[object, ...] = ("send",)
        elif d.action is Action.DEFER:
            want = ("defer", d.not_before, d.detail or "")
        else:
            status = "expired" if d.reason is Reason.EXPIRED else "suppressed"
            want = ("drop", status, str(d.reason), d.detail)
        assert got[m.message_id] == want, m
