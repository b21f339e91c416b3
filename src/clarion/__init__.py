"""Clarion: self-hosted SMS and email marketing, delivered exactly once."""

__version__ = "0.1.0"
