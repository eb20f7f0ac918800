"""FastAGI: Asterisk asks simbank before it dials, and tells it when the call is over.

``AGI(agi://127.0.0.1:4573/authorize,${EXTEN})`` sets ``SIMBANK_DEVICE``, ``SIMBANK_BOOKING``
(or ``SIMBANK_REFUSED``) and friends on the channel; the hangup handler's
``AGI(agi://127.0.0.1:4573/complete)`` settles the booking (docs/pbx.md, "FastAGI").

Why our own protocol code and not a library: the FastAGI side of the protocol is small (an
``agi_*: value`` block, then one command line and one reply at a time), and the one maintained
asyncio candidate, panoramisk's ``fast_agi`` (MIT, last release 1.4 in 2021), reads the
environment block with an unbounded ``while b'\\n\\n' not in buffer`` loop (no timeout, no size
limit, and a peer that closes early makes it spin on empty reads), has no type hints, and does
not handle ``HANGUP`` notifications or multi-line ``520-`` replies; aioagi is built on aiohttp
and unmaintained since 2020. Here: a sans-IO core (:mod:`.protocol`), one connection's dialog
(:mod:`.session`), the two scripts against an injected :class:`Authorizer`
(:mod:`.scripts`, :mod:`.dialplan`) and the listener (:mod:`.server`). The package never
imports the daemon: the daemon plugs it in, as it does the integrations.
"""

from simbank.agi.protocol import AgiProtocolError, Environment
from simbank.agi.scripts import Authorizer
from simbank.agi.server import DEFAULT_HOST, DEFAULT_PORT, AgiServer, check_host, serve

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "AgiProtocolError",
    "AgiServer",
    "Authorizer",
    "Environment",
    "check_host",
    "serve",
]
