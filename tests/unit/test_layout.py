"""The layout's promises, read from the source: which package may import which.

Every ``import`` and ``from … import`` of every module under ``src/simbank`` is collected with
:mod:`ast` — module level, inside functions and under ``if TYPE_CHECKING:`` alike (a type-only
import still ties the two packages together). Each :class:`Rule` is one promise of the
layout (issue 12; habit 1 of CONVENTIONS.md): ``bank/`` is pure, ``ctl/`` speaks the contract
and never the daemon, an import never points up the stack. A breach names the module, the line and the import.

The self-tests at the end feed the checker made-up imports, so a rule that could never fail
(a misspelt scope, a checker that reads nothing) fails here instead of passing quietly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import simbank

PACKAGE = Path(simbank.__file__).parent

#: libraries that read or write the outside world (files, sockets, ports, processes, logs,
#: the broker), and the hidden inputs a pure function must be handed instead (time, chance)
IO = (
    "asyncio",
    "sqlite3",
    "os",
    "sys",
    "io",
    "socket",
    "ssl",
    "select",
    "selectors",
    "subprocess",
    "multiprocessing",
    "threading",
    "signal",
    "pathlib",
    "shutil",
    "tempfile",
    "glob",
    "fcntl",
    "termios",
    "pty",
    "mmap",
    "http",
    "urllib",
    "logging",
    "structlog",
    "serial",
    "serial_asyncio",
    "serial_asyncio_fast",
    "aiomqtt",
    "paho",
    "prometheus_client",
    "time",
    "random",
    "simbank.at.channel",
)

#: the edges of the house: bank/, drivers/, store/ and mqtt/ never import them (the daemon
#: wires them in)
EDGES = (
    "simbank.ctl",
    "simbank.integrations",
    "simbank.demo",
    "simbank.mosquitto",
    "simbank.web",
    "simbank.scan",
    "simbank.agi",
    "simbank.fleet",
)


@dataclass(frozen=True)
class Import:
    """One imported name as written in ``module`` (absolute, relative imports resolved)."""

    module: str
    name: str
    line: int


@dataclass(frozen=True)
class Rule:
    """Modules under ``scope`` must not import anything under ``forbidden``; with ``only``,
    their imports of ``simbank`` must stay inside ``scope`` or under one of ``only``."""

    id: str
    scope: tuple[str, ...]
    why: str
    forbidden: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None

    def covers(self, module: str) -> bool:
        return _under(module, self.scope)

    def breaches(self, imp: Import) -> bool:
        if _under(imp.name, self.forbidden):
            return True
        if self.only is None or not _under(imp.name, ("simbank",)):
            return False
        return not _under(imp.name, (*self.scope, *self.only))


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


RULES = (
    Rule(
        "bank-is-pure",
        ("simbank.bank",),
        "bank/ holds pure domain rules: no I/O, no clock or randomness of its own",
        forbidden=IO,
    ),
    Rule(
        "bank-below-the-daemon",
        ("simbank.bank",),
        "bank/ decides; the daemon, the store, the transport and the drivers act on it",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.mqtt",
            "simbank.drivers",
            "simbank.simulator",
            *EDGES,
        ),
    ),
    Rule(
        "codec-is-sans-io",
        ("simbank.at.codec", "simbank.at.codes", "simbank.drivers.parse"),
        "the AT codec, the code tables and the response parsers are sans-IO: bytes in, events out",
        forbidden=IO,
    ),
    Rule(
        "at-is-the-bottom",
        ("simbank.at",),
        "at/ is the lowest layer: it knows only itself and the exceptions",
        only=("simbank.errors",),
    ),
    Rule(
        "contract-stands-alone",
        ("simbank.contract",),
        "the MQTT contract is shared by the daemon and simbankctl and depends on nothing of theirs",
        only=("simbank.errors",),
    ),
    Rule(
        "drivers-below-the-daemon",
        ("simbank.drivers",),
        "drivers/ speak to modems; the daemon, the transport and the store sit above them",
        forbidden=("simbank.daemon", "simbank.mqtt", "simbank.store", *EDGES),
    ),
    Rule(
        "store-below-the-daemon",
        ("simbank.store",),
        "store/ keeps the bank's records; the daemon and the transport sit above it",
        forbidden=("simbank.daemon", "simbank.mqtt", *EDGES),
    ),
    Rule(
        "mqtt-below-the-daemon",
        ("simbank.mqtt",),
        "mqtt/ is the transport shared by the daemon and simbankctl",
        forbidden=("simbank.daemon", *EDGES),
    ),
    Rule(
        "ctl-speaks-the-contract",
        ("simbank.ctl",),
        "simbankctl talks to gateways over MQTT through the contract, never through the daemon",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.integrations",
            "simbank.simulator",
            "simbank.demo",
        ),
    ),
    Rule(
        "fleet-speaks-the-contract",
        ("simbank.fleet",),
        "the fleet client picks a gateway from the broker's retained state, never the daemon's",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.integrations",
            "simbank.simulator",
            "simbank.demo",
            "simbank.ctl",
            "simbank.web",
        ),
    ),
    Rule(
        "fleet-choice-is-pure",
        ("simbank.fleet.choice",),
        "choosing a gateway is a function of what the broker shows",
        forbidden=IO,
    ),
    Rule(
        "web-speaks-the-contract",
        ("simbank.web",),
        "the dashboard relays the MQTT contract with the user's own login, never the daemon's",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.integrations",
            "simbank.simulator",
            "simbank.demo",
            "simbank.ctl",
        ),
    ),
    Rule(
        "scan-reads-through-the-drivers",
        ("simbank.scan",),
        "simbankd scan probes ports through the drivers, read-only; it knows nothing of the daemon",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.mqtt",
            "simbank.integrations",
            "simbank.simulator",
            "simbank.demo",
            "simbank.ctl",
            "simbank.web",
        ),
    ),
    Rule(
        "scan-report-is-pure",
        ("simbank.scan.findings", "simbank.scan.grouping", "simbank.scan.render"),
        "the scan's findings, grouping and output are pure: data in, text out",
        forbidden=IO,
    ),
    Rule(
        "agi-plugs-in",
        ("simbank.agi",),
        "the FastAGI endpoint asks an injected Authorizer; the daemon plugs it in, it never "
        "reaches back",
        forbidden=(
            "simbank.daemon",
            "simbank.store",
            "simbank.mqtt",
            "simbank.ctl",
            "simbank.demo",
            "simbank.integrations",
            "simbank.simulator",
            "simbank.web",
            "simbank.scan",
        ),
    ),
    Rule(
        "agi-protocol-is-sans-io",
        ("simbank.agi.protocol", "simbank.agi.dialplan"),
        "the FastAGI protocol core and the channel-variable mappings are pure",
        forbidden=IO,
    ),
    Rule(
        "integrations-plug-in",
        ("simbank.integrations",),
        "the daemon plugs the integrations in; they never reach back into it",
        forbidden=("simbank.daemon", "simbank.ctl", "simbank.demo"),
    ),
    Rule(
        "simulator-is-a-modem",
        ("simbank.simulator",),
        "the simulator plays the modems and knows nothing of the daemon that drives them",
        forbidden=(
            "simbank.daemon",
            "simbank.mqtt",
            "simbank.store",
            "simbank.ctl",
            "simbank.integrations",
            "simbank.demo",
        ),
    ),
)


# -- reading the source --------------------------------------------------------------------


def module_of(path: Path, package: Path = PACKAGE) -> tuple[str, bool]:
    """``(dotted name, is a package)`` of a file under ``package``."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imports_in(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import of ``source`` (as ``module``), wherever it stands. ``from x import a``
    yields ``x.a`` (which lies under ``x``), so ``from simbank import daemon`` counts as
    ``simbank.daemon``, not as the root package."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.extend(
                Import(
                    module, target if alias.name == "*" else f"{target}.{alias.name}", node.lineno
                )
                for alias in node.names
            )
    return found


def source_imports(package: Path = PACKAGE) -> dict[str, list[Import]]:
    """Module name → its imports, for every module of the package."""
    graph: dict[str, list[Import]] = {}
    for path in sorted(package.rglob("*.py")):
        module, is_package = module_of(path, package)
        graph[module] = imports_in(path.read_text(encoding="utf-8"), module, is_package=is_package)
    return graph


def violations(rule: Rule, graph: Mapping[str, Iterable[Import]]) -> list[str]:
    """One line per breach of ``rule``: the module, the line and the import."""
    return [
        f"{imp.module} imports {imp.name} (line {imp.line})"
        for module, imports in sorted(graph.items())
        if rule.covers(module)
        for imp in imports
        if rule.breaches(imp)
    ]


GRAPH = source_imports()


# -- the rules, on the real source ---------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_layout_rule(rule: Rule) -> None:
    assert any(rule.covers(m) for m in GRAPH), f"{rule.id}: no module under {rule.scope}"
    breaches = violations(rule, GRAPH)
    assert not breaches, f"{rule.id}: {rule.why}:\n  " + "\n  ".join(breaches)


def test_the_whole_package_is_read() -> None:
    for module in ("simbank", "simbank.bank.policy", "simbank.ctl.main", "simbank.at.codec"):
        assert module in GRAPH
    assert len(GRAPH) > 50
    assert Import("simbank.ctl.table", "simbank.contract.Topics", 12) in GRAPH["simbank.ctl.table"]


# -- the checker can fail ------------------------------------------------------------------


def _bad_import(rule: Rule) -> str:
    if rule.forbidden:
        return f"{rule.forbidden[0]}.anything"
    return "simbank.daemon.app"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_rule_can_fail(rule: Rule) -> None:
    module = f"{rule.scope[0]}.made_up"
    bad = Import(module, _bad_import(rule), 7)
    fine = Import(module, "dataclasses", 3)
    outside = Import("simbank.elsewhere", bad.name, 9)
    graph = {module: [fine, bad], "simbank.elsewhere": [outside]}
    assert violations(rule, graph) == [f"{module} imports {bad.name} (line 7)"]


@pytest.mark.parametrize(
    ("rule_id", "name", "breaks"),
    [
        ("bank-is-pure", "asyncio", True),
        ("bank-is-pure", "os.path", True),
        ("bank-is-pure", "osmium", False),  # a prefix of a word is not the module
        ("bank-is-pure", "simbank.at.channel", True),
        ("bank-is-pure", "simbank.at.codes", False),
        ("bank-is-pure", "zoneinfo", False),
        ("bank-below-the-daemon", "simbank.daemon", True),
        ("bank-below-the-daemon", "simbank.store.ledger.Ledger", True),
        ("bank-below-the-daemon", "simbank.errors.Refused", False),
        ("at-is-the-bottom", "simbank.errors", False),
        ("at-is-the-bottom", "simbank.at.codec", False),
        ("at-is-the-bottom", "simbank.drivers.types", True),
        ("at-is-the-bottom", "simbank.__version__", True),
        ("at-is-the-bottom", "asyncio", False),
        ("contract-stands-alone", "pydantic", False),
        ("contract-stands-alone", "simbank.config.models", True),
        ("ctl-speaks-the-contract", "simbank.mqtt", False),
        ("ctl-speaks-the-contract", "simbank.daemon.board", True),
        ("simulator-is-a-modem", "simbank.at.codec", False),
        ("simulator-is-a-modem", "simbank.daemon", True),
    ],
)
def test_rule_table(rule_id: str, name: str, breaks: bool) -> None:
    rule = next(r for r in RULES if r.id == rule_id)
    assert rule.breaches(Import(f"{rule.scope[0]}.x", name, 1)) is breaks


def test_imports_are_found_wherever_they_stand() -> None:
    source = (
        "from __future__ import annotations\n"
        "import os.path, json as j\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from simbank.daemon.app import Daemon\n"
        "from simbank import daemon\n"
        "from . import policy\n"
        "from .usage import Usage\n"
        "from .. import errors\n"
        "def later():\n"
        "    import sqlite3\n"
        "    from simbank.store import *\n"
    )
    names = {i.name for i in imports_in(source, "simbank.bank.rotation")}
    assert {
        "os.path",
        "json",
        "simbank.daemon.app.Daemon",
        "simbank.daemon",
        "simbank.bank.policy",
        "simbank.bank.usage.Usage",
        "simbank.errors",
        "sqlite3",
        "simbank.store",
    } <= names
    assert "simbank" not in names  # ``from simbank import daemon`` names the daemon, not the root
    in_package = {
        i.name for i in imports_in("from . import codec\n", "simbank.at", is_package=True)
    }
    assert in_package == {"simbank.at.codec"}
