"""Where ``simbankctl`` finds its broker: flags > environment > ``--config`` > defaults.

The environment variables are ``SIMBANK_MQTT_HOST``, ``SIMBANK_MQTT_PORT``,
``SIMBANK_MQTT_USERNAME``, ``SIMBANK_MQTT_PASSWORD_FILE``, ``SIMBANK_BASE_TOPIC`` and
``SIMBANK_GATEWAY``. Every problem is a :class:`ConfigError` (exit 78).
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from simbank.config.loader import load_config
from simbank.config.models import MqttConfig
from simbank.contract import DEFAULT_BASE
from simbank.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    """The broker, topics and deadline one simbankctl run uses."""

    cfg: MqttConfig
    base: str
    gateway: str | None
    timeout: float
    client_id: str


def _first(*values: Any) -> Any:
    """The first value that is set (not ``None``, not empty)."""
    return next((v for v in values if v not in (None, "")), None)


def settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags > environment > ``--config`` > defaults; raise ConfigError when invalid."""
    base_cfg: dict[str, Any] = {}
    config_gateway = None
    if args.config:
        full = load_config(args.config)
        base_cfg = full.mqtt.model_dump(exclude_none=True)
        config_gateway = full.gateway.id
    env_port = environ.get("SIMBANK_MQTT_PORT")
    if env_port and not env_port.isdigit():
        raise ConfigError(f"SIMBANK_MQTT_PORT: not a port number: {env_port!r}")
    overlay = {
        "host": _first(args.host, environ.get("SIMBANK_MQTT_HOST")),
        "port": _first(args.port, int(env_port) if env_port else None),
        "base_topic": _first(args.base, environ.get("SIMBANK_BASE_TOPIC")),
        "username": _first(args.username, environ.get("SIMBANK_MQTT_USERNAME")),
        "password_file": _first(args.password_file, environ.get("SIMBANK_MQTT_PASSWORD_FILE")),
        "tls_ca": args.tls_ca,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "protocol": args.protocol,
    }
    merged = {**base_cfg, **{k: v for k, v in overlay.items() if v is not None}}
    try:
        cfg = MqttConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"broker settings: {problems}") from exc
    gateway = _first(args.gateway, environ.get("SIMBANK_GATEWAY"), config_gateway)
    client_id = f"simbankctl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return Settings(cfg, cfg.base_topic or DEFAULT_BASE, gateway, args.timeout, client_id)
