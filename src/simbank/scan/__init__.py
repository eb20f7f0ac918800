"""``simbankd scan``: find the modems on the serial ports and print their config.

Layers, top down: ``command`` (the CLI options and output), ``probe`` (opening ports and the
read-only AT exchange, through ``drivers``), ``ports`` and ``sysfs`` (which ports exist, who
holds them, their USB identity), and the pure part — ``findings`` (what a port showed),
``grouping`` (ports of one modem, the port to use, ids) and ``render`` (TOML block, udev lines,
JSON). See docs/install.md.
"""
