"""``simbank-web``: serve the dashboard on a gateway or an admin box.

Each user logs in on the page with their own broker user name and password; the broker's
ACL decides what they see and may do. The page carries passwords, so it listens on loopback
unless ``--allow-remote`` (then put it behind a reverse proxy with TLS). It answers only
requests addressed to its own names (loopback, its listen address, ``--public-host``), so a
foreign site cannot reach it by re-pointing its own DNS name at it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog
from pydantic import ValidationError

from simbank.addresses import is_loopback
from simbank.config.models import MqttConfig
from simbank.web.hosts import split_host
from simbank.web.server import Dashboard

EXIT_OK, EXIT_USAGE, EXIT_CONFIG = 0, 2, 78


def host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a pair; ArgumentTypeError when malformed."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port_text)


def public_host(text: str) -> str:
    """A ``--public-host`` value: ``NAME`` or ``NAME:PORT``; ArgumentTypeError when not one."""
    try:
        split_host(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a host name (NAME or NAME:PORT), got {text!r}"
        ) from None
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simbank-web",
        description="the simbank dashboard: a web page that speaks the MQTT contract, "
        "logging in to the broker with each user's own credentials",
        epilog="Requests are answered only when their Host header is the --listen address, "
        "localhost, 127.0.0.1 or [::1] (with the listening port), or a --public-host name; "
        "any other Host gets 421 (DNS rebinding defence). See docs/dashboard.md.",
    )
    p.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="where the page is served (default 127.0.0.1:8080)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --listen address other than loopback (put a TLS reverse proxy in front: "
        "the page carries broker passwords)",
    )
    p.add_argument(
        "--public-host",
        type=public_host,
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header is NAME (any port) or NAME:PORT, e.g. "
        "the name a reverse proxy serves the page under; repeatable. Any other Host is "
        "refused, so a foreign page cannot reach the dashboard through DNS rebinding",
    )
    p.add_argument("--mqtt-host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    p.add_argument("--mqtt-port", type=int, default=None, help="broker port (1883, 8883 with TLS)")
    p.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS")
    p.add_argument("--mqtt-cafile", type=Path, help="CA certificate of the broker (implies TLS)")
    p.add_argument(
        "--mqtt-allow-insecure",
        action="store_true",
        help="send users' passwords without TLS to a broker that is not on loopback",
    )
    p.add_argument("--base-topic", default="simbank", help="base topic (default simbank)")
    p.add_argument(
        "--response-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a gateway has to answer a request (default 30)",
    )
    return p


def mqtt_config(args: argparse.Namespace) -> MqttConfig:
    """The broker settings from the command line; ValueError says what is wrong."""
    cafile: Path | None = args.mqtt_cafile
    if args.mqtt_tls and cafile is None:
        cafile = _system_cafile()
    tls = cafile is not None
    if not tls and not is_loopback(args.mqtt_host) and not args.mqtt_allow_insecure:
        raise ValueError(
            f"refusing to send users' passwords in clear to {args.mqtt_host}, which is not "
            "loopback: use --mqtt-tls (or --mqtt-allow-insecure)"
        )
    if cafile is not None and not cafile.is_file():
        raise ValueError(f"--mqtt-cafile: no such file {cafile}")
    port = args.mqtt_port if args.mqtt_port is not None else (8883 if tls else 1883)
    try:
        return MqttConfig(
            host=args.mqtt_host,
            port=port,
            base_topic=args.base_topic,
            tls_ca=cafile,
            protocol="5",
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValueError(f"{where}: {problem['msg']}") from None


def _system_cafile() -> Path:
    """The system's CA bundle (Debian: /etc/ssl/certs/ca-certificates.crt)."""
    import ssl  # noqa: PLC0415 - only needed with --mqtt-tls

    paths = ssl.get_default_verify_paths()
    found = paths.cafile or paths.openssl_cafile
    return Path(found)


async def _serve(dashboard: Dashboard) -> None:
    """Serve until SIGTERM (systemd) or SIGINT (Ctrl-C), then close every session."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with dashboard:
        print(f"simbank-web: the dashboard is at {dashboard.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    host, port = args.listen
    if not is_loopback(host) and not args.allow_remote:
        print(
            f"simbank-web: refusing to listen on {host}, which is not loopback: the page "
            "carries broker passwords. Put a reverse proxy with TLS in front and pass "
            "--allow-remote (see docs/dashboard.md).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not args.response_timeout > 0:
        print("simbank-web: --response-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        mqtt = mqtt_config(args)
    except ValueError as exc:
        print(f"simbank-web: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    dashboard = Dashboard(
        mqtt,
        args.base_topic,
        listen_host=host,
        listen_port=port,
        response_timeout_s=args.response_timeout,
        public_hosts=args.public_host,
    )
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        asyncio.run(_serve(dashboard))
    except OSError as exc:
        print(f"simbank-web: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
