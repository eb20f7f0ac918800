"""The ``[storage]`` section: how the ledger's storage is watched, backed up and kept small."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from simbank.config.section import Section

#: The shortest horizon: longer than any quota window (the billing month at most 31 days,
#: the rolling hour and day), so every quota decision reads unfolded rows.
MIN_RETENTION_DAYS = 35


class StorageConfig(Section):
    """The ledger's storage: a fault watch, backups and retention (docs/reliability.md §3b)."""

    probe_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="While the ledger cannot commit (the gateway is 'degraded'), how often a "
        "small test commit is tried; the first that succeeds ends the degraded state. Also how "
        "often a daemon that could not open its ledger at start (full, read-only) tries again.",
    )
    free_space_margin_mb: float = Field(
        default=64.0,
        ge=0,
        description="Below this much free space on the state directory's filesystem, a "
        "'storage_low' event and the simbank_storage_free_bytes metric warn before writes "
        "fail (0: no warning).",
    )
    free_space_check_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="How often the free space is read.",
    )
    backup_dir: Path | None = Field(
        default=None,
        strict=False,
        description="Where ledger backups are kept (created 0700); default <state_dir>/backups. "
        "Best on another filesystem than the state directory.",
    )
    backup_interval_h: float = Field(
        default=24.0,
        ge=0,
        le=8760,
        description="Hours between scheduled backups (SQLite's online backup: the daemon "
        "keeps running); 0: only on demand (storage/backup, simbankctl backup).",
    )
    backup_keep: int = Field(
        default=7,
        ge=1,
        le=1000,
        description="How many verified backups are kept; older ones are removed.",
    )
    retention_days: int = Field(
        default=90,
        ge=0,
        le=36500,
        description="Usage rows and events older than this are folded into per-SIM daily "
        "totals: quota decisions and the 30-day sim/report stay exact, older periods are kept "
        "as daily counts; the evidence of a quarantined SIM and unread SMS are kept whole. "
        f"0: never fold; at least {MIN_RETENTION_DAYS} when set. A 256-modem gateway's ledger "
        "holds 0.7 GB at 90 days and 0.8 GB after a year (bench/ledger_year.py).",
    )

    @field_validator("retention_days")
    @classmethod
    def _past_every_window(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be 0 (never fold) or at least {MIN_RETENTION_DAYS} days: the quota "
                "windows (the billing month) read unfolded rows"
            )
        return value

    def backups_in(self, state_dir: Path) -> Path:
        """The backup directory for this gateway's state directory."""
        return self.backup_dir if self.backup_dir is not None else state_dir / "backups"
