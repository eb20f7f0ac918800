"""simbank.daemon."""
