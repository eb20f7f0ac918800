"""simbank.drivers."""
