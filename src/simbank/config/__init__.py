"""Configuration: pydantic models of simbank.toml and the loader."""

from simbank.config.loader import EXIT_CONFIG, load_config, parse_config
from simbank.config.models import (
    ComplianceConfig,
    Config,
    DetectionConfig,
    GatewayConfig,
    LoggingConfig,
    ModemConfig,
    MqttConfig,
    PolicyConfig,
    RotationConfig,
)

__all__ = [
    "EXIT_CONFIG",
    "ComplianceConfig",
    "Config",
    "DetectionConfig",
    "GatewayConfig",
    "LoggingConfig",
    "ModemConfig",
    "MqttConfig",
    "PolicyConfig",
    "RotationConfig",
    "load_config",
    "parse_config",
]
