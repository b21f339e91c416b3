"""Layering: the pure packages never import I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "clarion"
PURE_PACKAGES = ("domain", "pipeline", "compliance", "intelligence")
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


# --- the simulator stands alone -------------------------------------------------------------

SIM_MUST_NOT_IMPORT = (
    "clarion.providers", "clarion.runtime", "clarion.store", "clarion.service", "clarion.bus",
    "clarion.api", "clarion.web", "clarion.harness", "clarion.bootstrap", "clarion.cli",
)  # fmt: skip


def sim_imports(module: str, source: str, known: set[str]) -> list[tuple[str, int]]:
    """(module imported, line) for every import in `module`'s source, function-local and
    TYPE_CHECKING ones too; `from package import name` counts as importing `package.name`
    when that is one of the `known` modules, and relative imports are resolved."""
    found: list[tuple[str, int]] = []
    package = module.split(".")  # a module's package is its name less the last part
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package[: len(package) - node.level])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
    return list(dict.fromkeys(found))  # one entry per module and line


def sim_import_cycle(edges: dict[str, list[tuple[str, int]]]) -> list[str] | None:
    """One cycle in the import graph, as "a imports b (line n)" steps, or None."""
    done: set[str] = set()
    path: list[tuple[str, str, int]] = []  # (importer, imported, line) on the way down

    def visit(module: str, stack: list[str]) -> list[str] | None:
        if module in stack:
            steps = path[stack.index(module) :]
            return [f"{a} imports {b} (line {n})" for a, b, n in steps]
        if module in done:
            return None
        for imported, line in edges.get(module, []):
            path.append((module, imported, line))
            if (cycle := visit(imported, [*stack, module])) is not None:
                return cycle
            path.pop()
        done.add(module)
        return None

    for start in sorted(edges):
        if (cycle := visit(start, [])) is not None:
            return cycle
    return None


def test_the_simulator_imports_no_clarion_adapter_and_its_modules_form_no_cycle() -> None:
    """`clarion.sim` plays the services Clarion's adapters talk to: sharing their code (a
    signing bug would then agree with itself) or Clarion's servers would make its tests
    prove nothing. Its front ends import its state and `app` assembles them, so no import
    (function-local or TYPE_CHECKING ones included) goes round in a circle."""
    files = sorted((SRC / "sim").rglob("*.py"))
    names = {
        p: ".".join(("clarion", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for p in files
    }
    known = set(names.values())
    assert {"clarion.sim.app", "clarion.sim.state", "clarion.sim.sendgrid_api"} <= known
    edges: dict[str, list[tuple[str, int]]] = {}
    for path, module in names.items():
        imported = sim_imports(module, path.read_text(encoding="utf-8"), known)
        bad = [
            f"{path.relative_to(SRC)}:{line} imports {name}"
            for name, line in imported
            if any(name == f or name.startswith(f + ".") for f in SIM_MUST_NOT_IMPORT)
        ]
        assert not bad, "the simulator must stand alone: " + "; ".join(bad)
        edges[module] = [(name, line) for name, line in imported if name in known]
    assert any(name == "clarion.sim.state" for name, _ in edges["clarion.sim.app"])
    # the cycle finder finds a cycle when there is one (else this test could not fail)
    assert sim_import_cycle({"a": [("b", 3)], "b": [("a", 7)]}) == [
        "a imports b (line 3)",
        "b imports a (line 7)",
    ]
    cycle = sim_import_cycle(edges)
    assert cycle is None, "the simulator's imports go round in a circle: " + " → ".join(cycle)


# --- the import contract: arrows point inward -------------------------------------------------

# Each top-level module or package of `clarion` and its layer's rank: a module may import its
# own rank or an inner one (a lower rank), never an outer one.
LAYERS: dict[str, int] = {
    "clarion": 0,  # the package's own `__init__` (its version)
    "errors": 0,
    "domain": 0,
    "compliance": 1,
    "pipeline": 2,
    "tracking": 2,
    "intelligence": 2,
    "store": 3,
    "bus": 3,
    "providers": 3,
    "email": 3,
    "smpp": 3,
    "httpclient": 3,
    "observability": 3,
    "localserver": 3,
    "config": 3,
    "runtime": 4,
    "service": 5,
    "api": 6,
    "web": 6,
    "cli": 6,
    "bootstrap": 6,  # wiring: imports everything
    "harness": 6,
    "__main__": 6,
    # the harness modules, wherever they are while they move into `harness/`
    "bench": 6,
    "demo": 6,
    "measure": 6,
    "seed": 6,
}
# Adapters of one rank that must not know each other: the SQL holds no provider code (an
# account's rules live in the domain), and an adapter reaches the database only through the
# runtime that calls it.
KEPT_APART = frozenset({("store", "providers"), ("providers", "store")})
# The simulator stands alone; its own test (above) holds its rules, so this one skips it, and
# the imports of it too.
APART = frozenset({"sim"})
# Entrypoints: parse, call a use case in `service`, map errors. They never reach past it to a
# stage core, the SQL, the bus or an adapter. The pure inner rules (no I/O: an SMS body's
# segments, the ledger's CSV) are parsing and formatting they may do; settings, metrics and
# the wiring they may use too.
ENTRYPOINTS = frozenset({"api", "web", "cli", "__main__"})
ENTRYPOINTS_MAY_IMPORT = ENTRYPOINTS | {
    "clarion", "errors", "domain", "compliance", "config", "observability", "service",
    "bootstrap", "harness", "sim",
}  # fmt: skip


def module_name(path: Path) -> str:
    """`clarion.store.messages` for src/clarion/store/messages.py (a package: its `__init__`)."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def clarion_imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import of a `clarion` module in `module`'s source: at the top,
    in functions, under TYPE_CHECKING. Relative imports are resolved, and `from clarion import
    x` counts as importing `clarion.x` (`x` may be a module; for the layer it is the same)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            if base == "clarion":
                found += [(node.lineno, f"clarion.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return sorted((line, name) for line, name in set(found) if name.split(".")[0] == "clarion")


def layer_of(module: str) -> str:
    """The top-level part of a `clarion` module's name: its layer's key in `LAYERS`."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__version__":
        return "clarion"
    return parts[1]


def import_violations(
    sources: dict[str, tuple[str, str, bool]],
) -> tuple[list[str], list[str]]:
    """(imports pointing outward, imports by an entrypoint past the service layer), each named
    `clarion/store/messages.py:22 imports clarion.pipeline.send (why)`. `sources` maps a
    module's name to (its path shown, its source, whether it is a package)."""
    outward: list[str] = []
    past_service: list[str] = []
    for module, (shown, source, is_package) in sorted(sources.items()):
        mine = layer_of(module)
        if mine in APART:
            continue
        for line, name in clarion_imports(module, source, is_package):
            theirs = layer_of(name)
            where = f"{shown}:{line} imports {name}"
            if theirs in APART:
                continue
            if mine not in LAYERS or theirs not in LAYERS:
                outside = mine if mine not in LAYERS else theirs
                outward.append(f"{where} ({outside} is in no layer)")
            elif LAYERS[theirs] > LAYERS[mine]:
                outward.append(
                    f"{where} ({mine} is rank {LAYERS[mine]}, {theirs} {LAYERS[theirs]})"
                )
            elif (mine, theirs) in KEPT_APART:
                outward.append(f"{where} ({mine} and {theirs} are kept apart)")
            if mine in ENTRYPOINTS and theirs not in ENTRYPOINTS_MAY_IMPORT:
                past_service.append(f"{where} (an entrypoint calls the service layer)")
    return outward, past_service


def clarion_sources() -> dict[str, tuple[str, str, bool]]:
    return {
        module_name(p): (
            str(p.relative_to(SRC.parent)),
            p.read_text(encoding="utf-8"),
            p.name == "__init__.py",
        )
        for p in sorted(SRC.rglob("*.py"))
    }


def test_the_contract_names_each_import_that_points_outward() -> None:
    sources = {
        "clarion.store.messages": (
            "clarion/store/messages.py",
            "import clarion.domain.records\nfrom clarion.pipeline.send import MessageRow\n",
            False,
        ),
        "clarion.store.accounts": (
            "clarion/store/accounts.py",
            "def build():\n    from clarion.providers import accounts\n",
            False,
        ),
        "clarion.pipeline.send": (
            "clarion/pipeline/send.py",
            "if TYPE_CHECKING:\n    from clarion.store.db import Pool\n",
            False,
        ),
        "clarion.domain": ("clarion/domain/__init__.py", "from ..runtime import stages\n", True),
        "clarion.domain.ids": ("clarion/domain/ids.py", "from . import records\n", False),
        "clarion.runtime.x": ("clarion/runtime/x.py", "from clarion import bootstrap\n", False),
        "clarion.gadgets": ("clarion/gadgets.py", "from clarion.errors import Held\n", False),
        "clarion.cli.brands": (
            "clarion/cli/brands.py",
            "from clarion.service import brands\nfrom clarion.store import brands as b\n",
            False,
        ),
        "clarion.sim.app": ("clarion/sim/app.py", "from clarion.runtime import stages\n", False),
    }
    outward, past_service = import_violations(sources)
    assert outward == [
        "clarion/domain/__init__.py:1 imports clarion.runtime (domain is rank 0, runtime 4)",
        "clarion/gadgets.py:1 imports clarion.errors (gadgets is in no layer)",
        "clarion/pipeline/send.py:2 imports clarion.store.db (pipeline is rank 2, store 3)",
        "clarion/runtime/x.py:1 imports clarion.bootstrap (runtime is rank 4, bootstrap 6)",
        "clarion/store/accounts.py:2 imports clarion.providers (store and providers are kept"
        " apart)",
    ]
    assert past_service == [
        "clarion/cli/brands.py:2 imports clarion.store (an entrypoint calls the service layer)"
    ]


def test_every_import_points_inward() -> None:
    """errors, domain ← compliance ← pipeline ← store, bus, providers, … ← runtime ← service
    ← entrypoints: each module imports its own layer or an inner one, so a stage core never
    depends on the SQL, the SQL never on a provider, and the domain on nothing of ours."""
    sources = clarion_sources()
    assert {"clarion.domain.ports", "clarion.store.messages", "clarion.bootstrap"} <= set(sources)
    outward, _ = import_violations(sources)
    assert not outward, "imports that point outward:\n" + "\n".join(outward)


def test_every_module_is_in_a_layer() -> None:
    outside = sorted(
        shown
        for module, (shown, _, _) in clarion_sources().items()
        if layer_of(module) not in LAYERS and layer_of(module) not in APART
    )
    assert not outside, f"modules in no layer (add them to LAYERS): {outside}"


def test_entrypoints_call_only_the_service_layer() -> None:
    """The CLI, the API and the web UI parse, call a use case and map errors: none of them
    reaches past `service` into a stage core, the SQL, the bus or an adapter."""
    sources = clarion_sources()
    assert any(layer_of(m) == "api" for m in sources)
    _, past_service = import_violations(sources)
    assert not past_service, "entrypoints past the service layer:\n" + "\n".join(past_service)
