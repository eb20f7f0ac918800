"""Configuration: pydantic models of simbank.toml and the loader."""

from simbank.config.loader import EXIT_CONFIG, load_config, parse_config
from simbank.config.models import (
    Config,
    DetectionConfig,
    GatewayConfig,
    LoggingConfig,
    ModemConfig,
    MqttConfig,
    PolicyConfig,
)

__all__ = [
    "EXIT_CONFIG",
    "Config",
    "DetectionConfig",
    "GatewayConfig",
    "LoggingConfig",
    "ModemConfig",
    "MqttConfig",
    "PolicyConfig",
    "load_config",
    "parse_config",
]
