"""simbankctl, the operator's command line: it speaks the MQTT contract (``simbank.contract``)
through ``simbank.mqtt`` and never imports the daemon."""
