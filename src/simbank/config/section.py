"""What every configuration section shares: unknown keys are errors, values keep their TOML
type (``strict``), and a section is immutable once loaded."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A table of simbank.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)
