"""Send email over SMTP (a relay such as Postfix, Amazon SES or any ESP's SMTP endpoint).

A small pool of persistent connections, each carrying one transaction at a time, one
recipient per transaction (so every recipient gets its own answer and its own
List-Unsubscribe URL). Messages are built and DKIM-signed here (`email.message.build_email`).

Reply mapping (synchronous only; a bounce the relay learns later arrives as a DSN email):

| answer                                   | result                                         |
|------------------------------------------|------------------------------------------------|
| 250 to DATA                              | accepted (provider id: our Message-ID)         |
| RCPT/DATA refused, hard (5.1.1 …)        | accepted=False, `smtp:550`, the reply as detail|
| RCPT/DATA refused, soft (4xx, 5.7.x …)   | retry (throttled too for 421 and 4.7.x)        |
| MAIL FROM refused                        | retry: it is about our sender, not the address |
| connection lost or timed out             | reconnect; before DATA the message is tried    |
|                                          | once more at once, during DATA it is a retry   |
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

import aiosmtplib

from clarion.domain.messages import SendResult
from clarion.email.message import (
    DkimKey,
    OutboundEmail,
    build_email,
    classify_smtp_reply,
    dkim_txt_record,
)
from clarion.errors import ConfigurationError, InvalidInput

log = logging.getLogger(__name__)

TlsMode = Literal["auto", "starttls", "implicit", "off"]
# A pooled connection idle longer than this is checked with NOOP before use: servers close
# idle sessions (Postfix after 300 s), and a dead one is better found before MAIL FROM.
IDLE_CHECK_S = 30.0
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class _Connection:
    """One pooled SMTP session, (re)connected on demand."""

    def __init__(self, make: Callable[[], aiosmtplib.SMTP]) -> None:
        self._make = make
        self.smtp: aiosmtplib.SMTP | None = None
        self.used_at = 0.0

    async def ready(self) -> aiosmtplib.SMTP:
        smtp = self.smtp
        if smtp is not None and smtp.is_connected:
            if time.monotonic() - self.used_at < IDLE_CHECK_S:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except (aiosmtplib.SMTPException, OSError):
                self.discard()
        smtp = self._make()
        await smtp.connect()
        self.smtp = smtp
        return smtp

    def discard(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()

    async def quit(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


class SmtpProvider:
    """SMTP with a bounded pool of `pool_size` persistent connections.

    `tls`: "auto" upgrades with STARTTLS when the server offers it, "starttls" requires it,
    "implicit" connects over TLS (port 465), "off" never encrypts. `bounce_addr` is the
    envelope sender (Return-Path); default: the From address of each email.
    """

    name = "smtp"
    max_batch = 1000  # per call; the pool, not the batch, bounds what is in flight
    idempotent = False  # SMTP has no idempotency key
    # A 250 is the receiving server taking the message: no receipts follow, so it is final.
    final_on_accept = True

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = "auto",
        dkim: DkimKey | None = None,
        pool_size: int = 4,
        timeout_s: float = 30.0,
        local_hostname: str | None = None,
        bounce_addr: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.host, self.port, self.username = host, port, username
        self._password = password
        self.tls: TlsMode = tls
        self.dkim = dkim
        self.pool_size = pool_size
        self._timeout_s = timeout_s
        self._local_hostname = local_hostname
        self._bounce_addr = bounce_addr
        self._now = now
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(pool_size):
            self._idle.put_nowait(_Connection(self._new_smtp))

    def __repr__(self) -> str:
        return (
            f"SmtpProvider(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"tls={self.tls!r}, pool_size={self.pool_size}, dkim={self.dkim!r})"
        )

    def _new_smtp(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            timeout=self._timeout_s,
            use_tls=self.tls == "implicit",
            start_tls={"auto": None, "starttls": True}.get(self.tls, False),
            local_hostname=self._local_hostname,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpProvider:
        """From `CLARION_SMTP_HOST` (required), `CLARION_SMTP_PORT` (587),
        `CLARION_SMTP_USERNAME` and `CLARION_SMTP_PASSWORD` (both or neither),
        `CLARION_SMTP_TLS` (auto|starttls|implicit|off; "starttls" when credentials are set),
        `CLARION_SMTP_POOL_SIZE` (4), and a DKIM key from `CLARION_DKIM_SELECTOR`,
        `CLARION_DKIM_DOMAIN`, `CLARION_DKIM_KEY_FILE` (all three or none)."""
        env = os.environ if env is None else env

        def need(var: str) -> str:
            value = env.get(var, "")
            if not value:
                raise ConfigurationError(f"{var} is not set")
            return value

        def integer(var: str, default: int) -> int:
            try:
                return int(env.get(var) or default)
            except ValueError:
                raise ConfigurationError(f"{var} must be an integer") from None

        host = need("CLARION_SMTP_HOST")
        username = env.get("CLARION_SMTP_USERNAME") or None
        password = env.get("CLARION_SMTP_PASSWORD") or None
        if username is not None:
            need("CLARION_SMTP_PASSWORD")
        if password is not None:
            need("CLARION_SMTP_USERNAME")
        tls = env.get("CLARION_SMTP_TLS") or ("starttls" if username else "auto")
        if tls not in ("auto", "starttls", "implicit", "off"):
            raise ConfigurationError("CLARION_SMTP_TLS must be auto, starttls, implicit or off")
        dkim_vars = ("CLARION_DKIM_SELECTOR", "CLARION_DKIM_DOMAIN", "CLARION_DKIM_KEY_FILE")
        key = None
        if any(env.get(v) for v in dkim_vars):
            selector, domain, path = (need(v) for v in dkim_vars)
            try:
                pem = Path(path).read_bytes()
                dkim_txt_record(pem)  # parses the key: a bad file fails at start
            except OSError as exc:
                raise ConfigurationError(f"CLARION_DKIM_KEY_FILE: {exc}") from exc
            except InvalidInput as exc:
                raise ConfigurationError(f"CLARION_DKIM_KEY_FILE: {exc.reason}") from exc
            key = DkimKey(selector, domain, pem)
        return cls(
            host=host,
            port=integer("CLARION_SMTP_PORT", 587),
            username=username,
            password=password,
            tls=tls,  # type: ignore[arg-type]  # checked against the four modes above
            dkim=key,
            pool_size=integer("CLARION_SMTP_POOL_SIZE", 4),
        )

    async def send_emails(self, emails: Sequence[OutboundEmail]) -> list[SendResult]:
        """One result per email, in order; up to `pool_size` transactions at once."""
        results: list[SendResult | None] = [None] * len(emails)
        work = deque(enumerate(emails))
        down: list[str] = []  # why the server cannot be reached, once a connection failed

        async def worker() -> None:
            conn = await self._idle.get()
            try:
                while work:
                    i, email = work.popleft()
                    if down:  # do not wait out a timeout per message
                        results[i] = _retry(email, "smtp:connect", down[0])
                        continue
                    try:
                        results[i] = await self._send_one(conn, email)
                    except _Unreachable as exc:
                        down.append(exc.result.error_detail or "")
                        results[i] = exc.result
            finally:
                self._idle.put_nowait(conn)

        await asyncio.gather(*(worker() for _ in range(min(self.pool_size, len(emails)))))
        done = [r for r in results if r is not None]
        if len(done) != len(emails):
            raise AssertionError("an email was left without a result")
        return done

    async def _send_one(self, conn: _Connection, email: OutboundEmail) -> SendResult:
        try:
            raw = build_email(
                message_id=email.message_id,
                from_addr=email.from_addr,
                to_addr=email.to,
                subject=email.subject,
                text=email.text,
                html=email.html,
                unsubscribe_url=email.unsubscribe_url,
                unsubscribe_mailto=email.unsubscribe_mailto,
                dkim=self.dkim,
                now=self._now(),
            )
        except InvalidInput as exc:
            return _failed(email, "smtp:invalid", str(exc))
        sender = self._bounce_addr or parseaddr(email.from_addr)[1]
        recipient = parseaddr(email.to)[1]
        # The Message-ID build_email wrote, which DSNs and complaint reports quote back.
        from_domain = parseaddr(email.from_addr)[1].rpartition("@")[2].lower()
        provider_id = f"{email.message_id}@{from_domain}"
        for attempt in (1, 2):
            phase = "connect"
            try:
                smtp = await conn.ready()
                phase = "MAIL FROM"
                size = [f"SIZE={len(raw)}"] if smtp.supports_extension("size") else []
                await smtp.mail(sender, options=size)
                phase = "RCPT TO"
                await smtp.rcpt(recipient)
                phase = "DATA"
                await smtp.data(raw)
            except aiosmtplib.SMTPResponseException as exc:
                conn.used_at = time.monotonic()
                if phase == "connect" or exc.code == 421:  # no usable session
                    conn.discard()
                else:
                    await _reset(conn)
                result = _refused(email, phase, exc.code, exc.message)
                if phase == "connect":  # a greeting, STARTTLS or AUTH refused
                    raise _Unreachable(result) from exc
                return result
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Timeouts and disconnects (aiosmtplib raises both as SMTPException/OSError).
                conn.discard()
                log.warning("smtp %s:%s: %r during %s", self.host, self.port, exc, phase)
                if attempt == 1 and phase != "DATA":
                    continue  # nothing was handed over: a stale connection, try a fresh one
                if phase == "connect":
                    raise _Unreachable(_retry(email, "smtp:connect", repr(exc))) from exc
                return _retry(email, "smtp:lost", f"{phase}: {exc!r}")
            conn.used_at = time.monotonic()
            return SendResult(
                message_id=email.message_id, accepted=True, provider_message_id=provider_id
            )
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Say QUIT on every idle connection (call when no send is in flight); a later send
        connects again."""
        idle = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        for conn in idle:
            await conn.quit()
            self._idle.put_nowait(conn)


class _Unreachable(Exception):
    """No session could be opened: the rest of the call is not attempted."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error_detail)
        self.result = result


async def _reset(conn: _Connection) -> None:
    """RSET after a refused command, so the session is clean for the next message."""
    smtp = conn.smtp
    if smtp is None:
        return
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        conn.discard()


def _failed(email: OutboundEmail, code: str, detail: str) -> SendResult:
    return SendResult(
        message_id=email.message_id, accepted=False, error_code=code, error_detail=detail
    )


def _retry(email: OutboundEmail, code: str, detail: str, *, throttled: bool = False) -> SendResult:
    return SendResult(
        message_id=email.message_id,
        accepted=False,
        error_code=code,
        error_detail=detail[:500],
        retry=True,
        throttled=throttled,
    )


def _refused(email: OutboundEmail, phase: str, code: int, message: str) -> SendResult:
    detail = f"{phase}: {code} {message}"[:500]
    if phase in ("connect", "MAIL FROM"):  # our session or sender, not this recipient
        return _retry(email, f"smtp:{code}", detail, throttled=code == 421)
    m = _ENHANCED.match(message)
    enhanced = m[1] if m else None
    if classify_smtp_reply(code, enhanced, message) == "hard":
        return _failed(email, f"smtp:{code}", detail)
    throttled = code == 421 or (enhanced or "").startswith("4.7.")
    return _retry(email, f"smtp:{code}", detail, throttled=throttled)
