"""Provider adapters behind one `Provider` protocol."""

from clarion.providers.base import Provider, SendResult

__all__ = ["Provider", "SendResult"]
