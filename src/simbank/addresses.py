"""Which host names are this machine's own: one rule for every listener and every client.

Used where simbank refuses to expose something (metrics, the dashboard) or to send a password
in clear (MQTT, the dashboard's broker) anywhere but loopback.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``localhost`` or a literal loopback address (``127.0.0.0/8``, ``::1``, an IPv4-mapped
    ``::ffff:127.x``; brackets and a trailing dot allowed). A name like
    ``127.0.0.1.example.com`` resolves wherever its owner likes, so it is not loopback."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
