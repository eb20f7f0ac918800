"""The per-install secret and the keyed hash that stands in for a phone number in the ledger.

The secret is generated on first start and kept in ``<state_dir>/secret`` (mode 0600). It
is created under a temporary name and hard-linked into place, so two processes starting at
once agree on one secret and nobody ever reads a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from simbank.errors import LedgerError

SECRET_FILE = "secret"  # noqa: S105 - the file name, not a secret
_SECRET_BYTES = 32
_SEPARATORS = re.compile(r"[\s().\-/]")
_MAX_E164_DIGITS = 15
#: Shorter all-digit senders are carriers' and services' short codes ("10086"), not people.
_MIN_NUMBER_DIGITS = 7


def normalise_number(number: str) -> str:
    """The E.164 digits of ``number``: '+86 138-0013-8000' and '0086 13800138000' → '8613800138000'.

    Numbers without an international prefix are kept as their digits. Raises ``ValueError``
    for anything that is not a phone number.
    """
    text = _SEPARATORS.sub("", number)
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_E164_DIGITS:
        raise ValueError(f"not a phone number: {number!r}")
    return text


def is_phone_number(sender: str) -> bool:
    """A sender that is a person's number (7 digits or more), not a short code or a name."""
    try:
        return len(normalise_number(sender)) >= _MIN_NUMBER_DIGITS
    except ValueError:
        return False


class DestinationHasher:
    """HMAC-SHA256 of a normalised number under the install's secret (hex).

    The hashed string is the number's digits *without* the "+" (``442079460123``), as it was
    before destinations were parsed to E.164 (``simbank.bank.numbers``): ledgers and
    do-not-call lists written since keep matching. Changing it would need a ledger migration.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise LedgerError("the per-install secret is too short")
        self._secret = secret

    def hash(self, number: str) -> str:
        """The keyed hash of ``number``; equal for every spelling of one E.164 number
        ('+442079460123', '00442079460123', '442079460123')."""
        digits = normalise_number(number)
        return hmac.new(self._secret, digits.encode("ascii"), hashlib.sha256).hexdigest()

    def mac(self, data: bytes) -> str:
        """The keyed hash of any bytes (a key built from personal data)."""
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "DestinationHasher(<secret>)"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 if it does not exist."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)


def load_or_create_secret(state_dir: Path) -> bytes:
    """The install's secret, generated (0600) on first call."""
    ensure_private_dir(state_dir)
    target = state_dir / SECRET_FILE
    if not target.exists():
        _create(target)
    return _read(target)


def _create(target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(_SECRET_BYTES).encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, target)  # atomic; fails if another process won the race
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read(target: Path) -> bytes:
    info = target.stat()
    if info.st_mode & 0o077:
        with contextlib.suppress(PermissionError):
            target.chmod(0o600)
        if target.stat().st_mode & 0o077:
            raise LedgerError(f"{target} is readable by others ({stat.filemode(info.st_mode)})")
    text = target.read_text("ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError as exc:
        raise LedgerError(f"{target} does not hold a hex secret") from exc
    if len(secret) < 16:
        raise LedgerError(f"{target} holds a secret that is too short")
    return secret
