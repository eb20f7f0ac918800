"""The durable side of the bank: the SQLite ledger and its schema, the destination hasher's
secret, and the do-not-call list file. Everything here does file or database I/O; the rules
that read it are pure and live in ``simbank.bank``."""
