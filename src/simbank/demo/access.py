"""The demo's broker logins: the gateway, an operator and a monitor, as on a real gateway.

The private broker refuses anonymous clients and applies the rules of the shipped
``config/mosquitto/acl`` for the three users the demo has, so the dashboard shows what an
operator may do and what a monitor may not. Passwords are made fresh for each demo and
kept in files (0600) under the demo's directory; the terminal prints them, since the broker
listens on loopback only and lives as long as the demo.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from simbank.config.models import MqttConfig
from simbank.mosquitto import make_password_file

#: The shipped ACL's rules for the demo's users (config/mosquitto/acl has them all, commented).
ACL = """\
pattern readwrite simbank/%u/#
user monitor
topic read simbank/#
topic deny simbank/monitor/#
user operator
topic read simbank/#
topic write simbank/+/bridge/request/#
topic deny simbank/operator/#
"""


@dataclass(frozen=True, slots=True)
class DemoAccess:
    """Where the broker's files are, and each user's password file."""

    passwd: Path
    acl: Path
    password_files: dict[str, Path]

    @classmethod
    def create(cls, directory: Path, gateway: str) -> DemoAccess:
        directory.mkdir(parents=True, exist_ok=True)
        passwords = {user: secrets.token_urlsafe(9) for user in (gateway, "operator", "monitor")}
        files = {}
        for user, password in passwords.items():
            path = directory / f"{user}.password"
            path.write_text(password + "\n")
            path.chmod(0o600)
            files[user] = path
        acl = directory / "acl"
        acl.write_text(ACL)
        return cls(make_password_file(directory / "passwd", passwords), acl, files)

    def password(self, user: str) -> str:
        return self.password_files[user].read_text().strip()

    def login(self, mqtt: MqttConfig, user: str) -> MqttConfig:
        """``mqtt`` for ``user``: its name and password file."""
        return mqtt.model_copy(
            update={"username": user, "password_file": self.password_files[user]}
        )
