"""What simbankd offers other programs: Prometheus metrics, Home Assistant discovery, systemd
notification and watchdog. Each module adapts the daemon's state to one outside protocol."""
