"""The bank's rules, pure: quota policy, rotation plans, block detection and its evidence,
the circuit breaker, usage windows, destination numbers, SIM identity and lifecycle. No I/O
and no clock of their own: every function is handed the time and the facts
(``tests/unit/test_layout.py`` keeps it so)."""
