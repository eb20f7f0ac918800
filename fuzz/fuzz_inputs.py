"""The stored inputs of a fuzz target: its seed corpus and every input that ever broke it."""

from __future__ import annotations

from pathlib import Path

FUZZ = Path(__file__).resolve().parent


def stored_inputs(target: str) -> list[Path]:
    """fuzz/corpus/<target>/* and fuzz/regressions/<target>/* (dotfiles such as .gitkeep left
    out), sorted."""
    found: list[Path] = []
    for kind in ("corpus", "regressions"):
        folder = FUZZ / kind / target
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(found)
