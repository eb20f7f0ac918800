"""The documented install path, end to end and offline: the wheel built from this tree, a
venv laid out as /opt/simbank, the unit's ExecStart binary in it, and docs that agree.

The wheel is built with the project venv's own setuptools (``--no-build-isolation``: nothing
is downloaded) from a copy of the tree (the build writes ``build/`` and ``*.egg-info``). The
venv gets no pip (``venv --without-pip``); the wheel goes in with the project venv's pip
(``pip --python``), and a ``.pth`` file lends it the project venv's dependencies, which
``pip install simbank-*.whl`` would download on a real machine.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "simbankd.service"
DOCS = [
    ROOT / "systemd" / "README.md",
    ROOT / "docs" / "install.md",
    ROOT / "docs" / "operator-guide.md",
]
SCRIPTS = ("simbankd", "simbankctl", "simbank-sim", "simbank-web")
#: The setuptools pyproject.toml's [build-system] asks for (SPDX ``license``, ``license-files``).
SETUPTOOLS_MIN = 77


@dataclass(frozen=True)
class Installed:
    wheel: Path
    root: Path  # stands for / : the venv is root/opt/simbank

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "simbank"


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def _exec_start() -> str:
    lines = [
        line.split("=", 1)[1].strip()
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if line.startswith("ExecStart=")
    ]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    major = int(importlib.metadata.version("setuptools").split(".")[0])
    if major < SETUPTOOLS_MIN:
        pytest.fail(
            f"building the wheel offline needs setuptools>={SETUPTOOLS_MIN} in the dev venv "
            "(pyproject.toml [dev]); run `make setup-test`"
        )
    base = tmp_path_factory.mktemp("install")
    tree = base / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(
        ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    dist = base / "dist"
    built = _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", dist, tree,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("simbank-*.whl")
    root = base / "root"
    venv = root / "opt" / "simbank"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    put = _run(
        sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
        "--no-deps", "--no-index", wheel,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    site = _run(
        venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
    )
    (Path(site.stdout.strip()) / "simbank-test-deps.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    return Installed(wheel, root)


def test_wheel_carries_scripts_license_typing_and_static_files(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
    scripts = dict(
        re.findall(r"^(\S+) = (\S+)$", entry_points.split("[console_scripts]")[1], re.MULTILINE)
    )
    assert set(SCRIPTS) <= set(scripts), entry_points
    assert scripts["simbankd"] == "simbank.daemon.cli:main"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert "simbank/py.typed" in names
    static = ROOT / "src" / "simbank" / "web" / "static"
    shipped = [p for p in static.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    missing = [
        str(p.relative_to(ROOT / "src")) for p in shipped
        if str(p.relative_to(ROOT / "src")) not in names
    ]  # fmt: skip
    assert not missing, f"the wheel lacks the dashboard's files: {missing}"


def test_the_units_exec_start_is_the_installed_simbankd(installed: Installed) -> None:
    binary, *args = _exec_start().split()
    assert binary == "/opt/simbank/bin/simbankd"
    assert args == ["run", "--config", "/etc/simbank/simbank.toml"]
    installed_binary = installed.root / binary.lstrip("/")
    assert installed_binary.is_file()
    for script in SCRIPTS:
        assert (installed.venv / "bin" / script).is_file(), script
    version = _run(installed_binary, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"simbankd {importlib.metadata.version('simbank')}"
    example = ROOT / "config" / "simbank.example.toml"
    check = _run(installed_binary, "check-config", example)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{example}: ok (")
    # the code that ran is the wheel's, not this checkout's
    where = _run(installed.venv / "bin" / "python", "-c", "import simbank; print(simbank.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout + where.stderr
    bad = installed.root / "bad.toml"
    bad.write_text('[gateway]\nid = "GW 1"\n', encoding="utf-8")
    refused = _run(installed_binary, "check-config", bad)
    assert refused.returncode == 78, refused.stdout + refused.stderr


def _exec_starts(text: str) -> list[tuple[str, str]]:
    """``(previous non-blank line, value)`` for every ``ExecStart=`` line of a document."""
    found = []
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ExecStart="):
            found.append((previous, line.split("=", 1)[1].strip()))
        if line:
            previous = line
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_docs_show_the_units_exec_start(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    unit_line = _exec_start()
    assert "/opt/simbank/bin/simbankd" in text
    assert "/usr/bin/simbankd" not in text
    for previous, value in _exec_starts(text):
        # The unit's own line, or a drop-in that first clears ExecStart= (as systemd requires)
        assert value in (unit_line, "") or previous == "ExecStart=", (doc.name, value)
    # The unit is changed by drop-ins only, never edited in place.
    assert not re.search(r"\bsed\b[^\n]*simbankd\.service", text), doc.name


def test_a_doc_that_drifts_is_caught() -> None:
    """The parser above reads what it should: a stale ExecStart outside a drop-in shows."""
    stale = "```ini\n[Service]\nExecStart=/usr/bin/simbankd run\n```\n"
    dropin = "[Service]\nExecStart=\nExecStart=/usr/local/bin/simbankd run --config x\n"
    assert _exec_starts(stale) == [("[Service]", "/usr/bin/simbankd run")]
    assert _exec_starts(dropin)[1] == ("ExecStart=", "/usr/local/bin/simbankd run --config x")
