"""The HTTP client's per-request path imports nothing: a module it looks for and does not
find is searched for on sys.path again on every request (it was, for sniffio)."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from typing import Any

import httpcore._synchronization as sync


class _Recorder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.searched.append(fullname)
        return None  # let the real finders answer


def test_asking_which_event_loop_runs_searches_for_no_module() -> None:
    async def ask() -> str:
        sync.current_async_library()  # once, as at start-up
        recorder = _Recorder()
        sys.meta_path.insert(0, recorder)
        try:
            for _ in range(3):
                name = sync.current_async_library()
        finally:
            sys.meta_path.remove(recorder)
        assert recorder.searched == [], f"searched for {recorder.searched} on every request"
        return name

    assert asyncio.run(ask()) == "asyncio"
