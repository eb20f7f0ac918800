"""simbankd: the wiring. ``app`` runs it (one TaskGroup), ``modem/`` supervises each modem,
``runtime`` (with ``inventory``, ``verdicts``, ``publication``) applies the bank's rules to
what the modems say, ``commands/`` carries out MQTT requests behind ``router``, ``board``
publishes the retained state; ``cli`` and ``logs`` face the operator."""
