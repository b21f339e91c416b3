"""One exception tree. Errors carry data; the CLI and HTTP layer turn them into messages."""

from __future__ import annotations

from datetime import datetime


class ClarionError(Exception):
    """Base of every error Clarion raises on purpose. `str()` is what a user should read."""

    exit_code = 1


class ConfigurationError(ClarionError):
    """The environment cannot provide something Clarion needs (a server, a binary, a setting)."""

    exit_code = 78


class NotFound(ClarionError):
    """A brand-scoped record does not exist (or belongs to another brand)."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class InvalidInput(ClarionError):
    """Input that cannot be accepted; `field` names what was wrong."""

    exit_code = 65

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{message}")
        self.field = field
        self.row = row
        self.reason = message

    def __reduce__(self) -> tuple[object, tuple[str, str | None, int | None]]:
        # pickled (a row checked in a worker process) as the plain error it says
        return _invalid_input, (self.reason, self.field, self.row)


def _invalid_input(message: str, field: str | None, row: int | None) -> InvalidInput:
    return InvalidInput(message, field=field, row=row)


class InvalidPhoneNumber(InvalidInput):
    """A phone number that `phonenumbers` cannot parse or does not consider valid."""

    def __init__(self, raw: str, detail: str, *, row: int | None = None) -> None:
        super().__init__(f"invalid phone number {raw!r}: {detail}", field="phone", row=row)
        self.raw = raw


class TemplateError(InvalidInput):
    """A campaign template that does not compile, or fails to render for one recipient."""

    def __init__(self, message: str, *, line: int | None = None, field: str = "body") -> None:
        at = f" (line {line})" if line is not None else ""
        super().__init__(f"template error{at}: {message}", field=field)
        self.line = line
        self.message = message


class Refused(ClarionError):
    """A request that is well formed but that the state of things refuses (a number that
    opted out, a suppressed address); `field` names what it is about."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class Duplicate(Refused):
    """A record another of the brand's has the same key of: `existing_id` names that one (a
    subscriber with this phone or email)."""

    def __init__(self, kind: str, field: str, existing_id: int) -> None:
        super().__init__(f"{kind} {existing_id} has this {field} already", field=field)
        self.existing_id = existing_id


class Forbidden(ClarionError):
    """The caller is known but may not do this (an API key without the scope it needs)."""


class CampaignStateError(ClarionError):
    """A campaign command that its current state does not allow."""


class CampaignInvalid(InvalidInput):
    """A campaign that must not be launched as written; `problems` lists why."""

    def __init__(self, campaign_id: int, problems: list[str], detail: str) -> None:
        super().__init__(
            f"campaign {campaign_id} cannot be launched: {'; '.join(problems)} ({detail})",
            field="body",
        )
        self.problems = problems


class Held(ClarionError):
    """A batch that must wait (its campaign is paused): redelivered after `retry_after_s`,
    not counted as a failure."""

    def __init__(self, reason: str, retry_after_s: float = 0.5) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class TooLarge(InvalidInput):
    """Input larger than what can carry it (a request body, a bus message)."""


class ForgedWebhook(ClarionError):
    """A webhook whose signature does not verify. Answered with 403, never processed."""


class ProviderError(ClarionError):
    """A provider call failed as a whole (transport, 5xx). Transient: the batch is retried."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retry_after_s = retry_after_s
        self.throttled = throttled  # HTTP 429, SMPP 0x58: the lane should slow down


class SignInFailed(ClarionError):
    """A web sign-in refused: an unknown address or a wrong password (never said which)."""

    exit_code = 77

    def __init__(self, message: str = "wrong email or password") -> None:
        super().__init__(message)


class AccountLocked(SignInFailed):
    """Too many wrong passwords in a row: no sign-in, even with the right one, until
    `until`."""

    def __init__(self, until: datetime) -> None:
        super().__init__(
            "too many failed sign-ins: this account is locked until "
            f"{until:%H:%M} UTC; try again then"
        )
        self.until = until
