"""simbank.bank."""
