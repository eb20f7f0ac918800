"""simbank: SIM-bank controller for GSM/LTE gateway boxes."""

__version__ = "0.1.0"
