"""Modem semantics over an AT channel: 27.007/27.005 in ``generic`` (on ``base``), vendor
dialects as thin subclasses, ``registry`` to pick one, ``port`` to open the serial device,
``procedures`` for multi-command actions, and ``parse/`` for the pure answer parsers."""
