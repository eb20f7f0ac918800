"""Configuration models (DESIGN §6, a contract): TOML in, validated pydantic objects out.

Unknown keys are errors everywhere (``extra="forbid"``), and so are values of the wrong TOML
type (``strict``: ``port = "1883"`` or ``port = true`` is refused, not read as 1883 or 1; an
integer is still fine where a float is expected, a string where a path is). Every field carries
a description, from which docs/configuration.md is generated.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Annotated, Literal, Self

import phonenumbers
from pydantic import Field, field_validator, model_validator

from simbank.config.agi import AgiConfig
from simbank.config.messaging import SmsConfig
from simbank.config.policy import PolicyConfig
from simbank.config.section import Section as _Section
from simbank.config.storage import StorageConfig

__all__ = ["PolicyConfig", "SmsConfig", "StorageConfig"]

ID_PATTERN = r"^[a-z0-9_-]+$"


class GatewayConfig(_Section):
    """The gateway box itself."""

    id: Annotated[str, Field(pattern=ID_PATTERN, max_length=64)] = Field(
        description="Gateway id, part of every MQTT topic: lower-case letters, digits, '_' and '-'."
    )
    state_dir: Path = Field(
        default=Path("/var/lib/simbank"),
        strict=False,
        description="Directory for the ledger and the per-install secret (created 0700).",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone of the gateway, used for quiet hours and calendar days.",
    )
    poll_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often each modem's registration, signal and operator are polled "
        "(URCs update them in between).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class MqttConfig(_Section):
    """The MQTT broker the daemon reports to and takes commands from."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    base_topic: Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]+$")] = Field(
        default="simbank", description="First topic level; topics are <base_topic>/<gateway id>/..."
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id; default 'simbankd-<gateway id>'."
    )
    username: str | None = Field(default=None, description="Broker user name.")
    password_file: Path | None = Field(
        default=None,
        strict=False,
        description="File holding the broker password (first line); never the password itself.",
    )
    tls_ca: Path | None = Field(
        default=None, strict=False, description="CA certificate file: enables TLS."
    )
    tls_cert: Path | None = Field(
        default=None, strict=False, description="Client certificate file for TLS."
    )
    tls_key: Path | None = Field(
        default=None, strict=False, description="Client private key file for TLS."
    )
    protocol: Literal["3.1.1", "5"] = Field(default="5", description="MQTT protocol version.")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive interval.")
    allow_insecure: bool = Field(
        default=False,
        description="Allow sending a password without TLS to a broker that is not on loopback.",
    )

    @model_validator(mode="after")
    def _tls_pairs(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class DetectionConfig(_Section):
    """When carrier blocks are believed, and when the fleet circuit breaker opens."""

    denied_confirm_s: float = Field(
        default=30.0, ge=0, description="Registration denied (stat 3) must last this long."
    )
    searching_timeout_s: float = Field(
        default=300.0, gt=0, description="Searching this long with good signal → suspected."
    )
    circuit_blocks: int = Field(
        default=2, ge=1, description="This many blocked SIMs within the window pause all traffic."
    )
    circuit_window_s: float = Field(
        default=86400.0, gt=0, description="Window of the circuit breaker, in seconds."
    )
    searching_min_rssi_dbm: int = Field(
        default=-100,
        description="Signal at least this strong counts as 'good' for the stuck-searching rule.",
    )
    barred_cause_21_count: int = Field(
        default=3,
        ge=2,
        description="Call failures with cause 21 (call rejected) to this many different "
        "destinations in a day mean the SIM's calls are barred.",
    )
    suspension_keywords: list[str] = Field(
        default_factory=lambda: [
            "suspended",
            "blocked",
            "barred",
            "deactivated",
            "terminated",
            "停机",
            "заблокирован",
            "gesperrt",
            "bloqueado",
            "suspendido",
        ],
        description="Case-insensitive words in an operator SMS or USSD answer that make a SIM "
        "suspected (any script: SMS are read in PDU mode, UCS-2 included; the defaults add "
        "Chinese 停机 'service stopped', Russian, German and Spanish).",
    )


DriverName = Literal["auto", "generic", "quectel", "simcom", "huawei", "fibocom"]


class ModemConfig(_Section):
    """One modem on a serial port."""

    id: Annotated[str, Field(pattern=ID_PATTERN, max_length=64)] = Field(
        description="Modem id, part of MQTT topics."
    )
    port: str = Field(
        min_length=1,
        description="Serial device path, ideally a stable udev name. A port that does not exist "
        "yet is not an error: the modem is reported absent until it appears.",
    )
    baudrate: int = Field(
        default=115200,
        description="Serial speed.",
    )
    driver: DriverName = Field(
        default="auto", description="AT dialect; 'auto' picks it from AT+CGMI/AT+CGMM."
    )
    slots: int = Field(default=1, ge=1, le=16, description="SIM slots this modem can switch.")
    device: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:/-]+$",
        description="The PBX's name for this modem (e.g. the chan_quectel device 'quectel0'): "
        "call/authorize answers it so the PBX dials on the right device.",
    )

    @field_validator("baudrate")
    @classmethod
    def _standard_rate(cls, value: int) -> int:
        rates = {9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 3000000}
        if value not in rates:
            raise ValueError(f"baudrate must be one of {sorted(rates)}")
        return value

    @field_validator("port")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("port must be an absolute device path")
        return value


class RotationConfig(_Section):
    """How SIMs are switched in their modems."""

    min_dwell_s: float = Field(
        default=60.0,
        ge=0,
        description="A SIM stays active at least this long before a "
        "rotation for headroom (a SIM that may not act at all is switched at once).",
    )
    wait_for_active_s: float = Field(
        default=30.0,
        ge=0,
        description="When the active SIM may act again within this long (its minimum gap, a "
        "rest), wait for it instead of switching: fewer re-registrations (0: always switch).",
    )
    sim_ready_timeout_s: float = Field(
        default=30.0, gt=0, description="After a slot switch, wait this long for +CPIN: READY."
    )
    registration_timeout_s: float = Field(
        default=90.0, gt=0, description="After a slot switch, wait this long for registration."
    )


class ComplianceConfig(_Section):
    """Rules that keep traffic inside carrier policy and the law."""

    do_not_call_file: Path | None = Field(
        default=None,
        strict=False,
        description="File of E.164 numbers never to call or text, one per line ('#' comments); "
        "loaded as hashes, reloaded on SIGHUP.",
    )
    show_sms_sender: bool = Field(
        default=False,
        description="Publish inbound SMS senders in clear in the sms_received event (default: "
        "masked). The ledger keeps a sender that is a phone number only as its keyed hash.",
    )
    max_call_duration_s: int = Field(
        default=3600, ge=1, description="Longest call a request may ask for."
    )
    default_region: str | None = Field(
        default=None,
        description="ISO 3166 alpha-2 region (e.g. 'GB') in which a number without '+' or "
        "'00' is read as a national number ('020 7946 0123'); unset: such numbers are refused "
        "and only international ones are accepted.",
    )
    allow_premium_rate: bool = Field(
        default=False,
        description="Allow calls and texts to premium-rate and shared-cost numbers (as "
        "libphonenumber classifies them); refused with restricted_destination otherwise.",
    )
    allow_short_codes: bool = Field(
        default=False,
        description="Allow short codes ('85075', reachable only with default_region), dialled "
        "as they are; emergency numbers are never dialled.",
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"{value!r} is not an ISO 3166 alpha-2 region code (upper case, e.g. 'GB') "
                "that libphonenumber knows"
            )
        return value


class MetricsConfig(_Section):
    """Optional Prometheus endpoint (labels carry modem ids and ICCIDs, never phone numbers)."""

    enabled: bool = Field(default=False, description="Serve /metrics over HTTP.")
    host: str = Field(
        default="127.0.0.1", description="Address to bind; loopback unless allow_remote."
    )
    port: int = Field(default=9464, ge=1, le=65535, description="TCP port of the endpoint.")
    allow_remote: bool = Field(
        default=False, description="Allow binding a non-loopback address (put TLS in front)."
    )


class HomeAssistantConfig(_Section):
    """Optional Home Assistant MQTT discovery: the gateway, its modems and SIMs as devices."""

    enabled: bool = Field(
        default=False,
        description="Publish discovery configs (retained) and clear the ones no longer current.",
    )
    prefix: str = Field(
        default="homeassistant",
        min_length=1,
        description=(
            "Home Assistant's discovery prefix; the shipped broker ACL "
            "(config/mosquitto/acl) grants 'homeassistant'."
        ),
    )


class LoggingConfig(_Section):
    """Log output."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Minimum level written."
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="'auto': console on a terminal, JSON lines otherwise."
    )


class Config(_Section):
    """The whole simbank.toml."""

    gateway: GatewayConfig = Field(description="The gateway box.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="The MQTT broker.")
    detection: DetectionConfig = Field(
        default_factory=DetectionConfig, description="Block detection."
    )
    modems: list[ModemConfig] = Field(default_factory=list, description="The modems.")
    policies: dict[str, PolicyConfig] = Field(
        default_factory=lambda: {"default": PolicyConfig()},
        description="Quota policies by name; 'default' applies to SIMs no other one matches.",
    )
    rotation: RotationConfig = Field(default_factory=RotationConfig, description="SIM rotation.")
    compliance: ComplianceConfig = Field(
        default_factory=ComplianceConfig, description="Compliance guards."
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus metrics.")
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant discovery."
    )
    sms: SmsConfig = Field(default_factory=SmsConfig, description="Received SMS.")
    agi: AgiConfig = Field(
        default_factory=AgiConfig, description="FastAGI endpoint for a PBX (docs/pbx.md)."
    )
    storage: StorageConfig = Field(
        default_factory=StorageConfig,
        description="The ledger's storage: fault watch, backups, retention.",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")

    @field_validator("modems")
    @classmethod
    def _unique_modems(cls, modems: list[ModemConfig]) -> list[ModemConfig]:
        ids: dict[str, int] = {}
        ports: dict[str, int] = {}
        for index, modem in enumerate(modems):
            if modem.id in ids:
                raise ValueError(
                    f"duplicate modem id {modem.id!r} (modems[{ids[modem.id]}] and modems[{index}])"
                )
            if modem.port in ports:
                raise ValueError(
                    f"port {modem.port!r} is used by two modems (modems[{ports[modem.port]}] "
                    f"and modems[{index}])"
                )
            ids[modem.id] = index
            ports[modem.port] = index
        return modems

    @field_validator("policies")
    @classmethod
    def _default_policy(cls, policies: dict[str, PolicyConfig]) -> dict[str, PolicyConfig]:
        if "default" not in policies:
            raise ValueError("a [policies.default] table is required")
        return policies

    def summary(self) -> dict[str, object]:
        """What bridge/info shows: the shape of the config, never a secret."""
        return {
            "gateway": self.gateway.id,
            "timezone": self.gateway.timezone,
            "modems": [{"id": m.id, "driver": m.driver, "slots": m.slots} for m in self.modems],
            "policies": sorted(self.policies),
            "mqtt": {
                "host": self.mqtt.host,
                "port": self.mqtt.port,
                "protocol": self.mqtt.protocol,
                "tls": self.mqtt.tls_ca is not None,
                "auth": self.mqtt.username is not None,
            },
        }
