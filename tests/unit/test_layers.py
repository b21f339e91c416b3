"""Layering: the pure packages never import I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "clarion"
PURE_PACKAGES = ("domain", "pipeline", "compliance")
FORBIDDEN = frozenset({"asyncpg", "nats", "httpx", "starlette", "uvicorn", "socket", "subprocess"})


def top_level_imports(source: str) -> set[str]:
    """Top-level module names a module imports (absolute imports only; relative imports stay
    inside the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def pure_files() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (SRC / pkg).rglob("*.py"))


def test_the_import_scanner_sees_every_kind_of_import() -> None:
    source = (
        "import os, socket\n"
        "import nats.js as js\n"
        "from httpx import AsyncClient\n"
        "from . import sibling\n"
        "def f():\n"
        "    import subprocess\n"
        "if True:\n"
        "    from starlette.requests import Request\n"
    )
    assert top_level_imports(source) == {"os", "socket", "nats", "httpx", "subprocess", "starlette"}


def test_every_pure_package_has_modules_to_check() -> None:
    files = pure_files()
    for pkg in PURE_PACKAGES:
        assert any(p.parent.name == pkg for p in files), pkg
    assert any(p.name == "personalize.py" for p in files)


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_modules_never_import_io_libraries(path: Path) -> None:
    imported = top_level_imports(path.read_text(encoding="utf-8"))
    assert not imported & FORBIDDEN, f"{path.relative_to(SRC)} imports {imported & FORBIDDEN}"
