"""Connection options of every simbank MQTT client: credentials, TLS, the last will."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiomqtt

from simbank.addresses import is_loopback
from simbank.config.models import MqttConfig
from simbank.contract import BridgeState
from simbank.errors import ConfigError

#: QoS 1 publishes wait this long for their acknowledgement.
PUBLISH_TIMEOUT_S = 10.0


def _read_password(path: Path) -> str:
    """The first line of ``path``, stripped; errors name the file, never what is in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"mqtt.password_file: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"mqtt.password_file: {path} is not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise ConfigError(
            f"mqtt.password_file: {path} is empty (the password goes on its first line)"
        )
    return password


def _tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    if cfg.tls_ca is None:
        if cfg.tls_cert is not None:
            raise ConfigError("mqtt.tls_cert: a client certificate needs tls_ca (enables TLS)")
        return None
    try:
        context = ssl.create_default_context(cafile=str(cfg.tls_ca))
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError(f"mqtt.tls_ca: cannot load {cfg.tls_ca}: {exc.strerror or exc}") from exc
    if cfg.tls_cert is not None and cfg.tls_key is not None:
        key = cfg.tls_key

        def encrypted() -> bytes:
            raise ConfigError(f"mqtt.tls_key: {key} is encrypted; the daemon needs a plain key")

        try:
            context.load_cert_chain(str(cfg.tls_cert), str(key), password=encrypted)
        except OSError as exc:
            raise ConfigError(
                f"mqtt.tls_cert/tls_key: cannot load {cfg.tls_cert} with {key}: "
                f"{exc.strerror or exc}"
            ) from exc
    return context


_PROTOCOLS = {"3.1.1": aiomqtt.ProtocolVersion.V311, "5": aiomqtt.ProtocolVersion.V5}


def client_options(cfg: MqttConfig, client_id: str, will_topic: str) -> dict[str, object]:
    """Keyword arguments for aiomqtt.Client built from the config (TLS, auth, protocol, will).

    Raises :class:`ConfigError` (naming the file or key, never a secret) for an unreadable or
    empty password file, a password without a user name, unloadable TLS files, or a password
    that would cross the network in clear (TLS off, broker not on loopback, no
    ``allow_insecure``).
    """
    password = _read_password(cfg.password_file) if cfg.password_file is not None else None
    if password is not None and cfg.username is None:
        raise ConfigError("mqtt.password_file: set mqtt.username too (no password without a user)")
    tls_context = _tls_context(cfg)
    if (
        password is not None
        and tls_context is None
        and not is_loopback(cfg.host)
        and not cfg.allow_insecure
    ):
        raise ConfigError(
            f"mqtt: refusing to send a password without TLS to {cfg.host}, which is not "
            "loopback (set tls_ca, or allow_insecure = true)"
        )
    return {
        "hostname": cfg.host,
        "port": cfg.port,
        "username": cfg.username,
        "password": password,
        "identifier": client_id,
        "protocol": _PROTOCOLS[cfg.protocol],
        "keepalive": cfg.keepalive_s,
        "tls_context": tls_context,
        "will": aiomqtt.Will(
            will_topic, BridgeState(state="offline").to_json(), qos=1, retain=True
        ),
        "timeout": PUBLISH_TIMEOUT_S,
    }
