"""The metrics endpoint over real HTTP on loopback: GET /metrics, 404, refusal of 0.0.0.0."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from simbank.contract import ModemState
from simbank.errors import ConfigError
from simbank.integrations.metrics import CONTENT_TYPE, Metrics, serve

pytestmark = pytest.mark.integration


def _metrics() -> Metrics:
    metrics = Metrics()
    metrics.observe_modem(ModemState(id="m1", port="/dev/ttyUSB2", state="ready"))
    metrics.observe_at("m1", 0.012, timed_out=False)
    metrics.set_mqtt_connected(True)
    return metrics


async def _http(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            raw = await reader.read()  # the server closes the connection after answering
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("ascii").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


async def test_get_metrics_answers_the_exposition() -> None:
    metrics = _metrics()
    async with await serve(metrics, port=0) as server:
        status, headers, body = await _http(
            server.port, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == CONTENT_TYPE
    assert int(headers["content-length"]) == len(body)
    text = body.decode()
    assert 'simbank_modems{state="ready"} 1.0' in text
    assert 'simbank_modem_up{modem="m1"} 1.0' in text
    assert "simbank_mqtt_connected 1.0" in text
    assert 'simbank_at_command_seconds_bucket{le="0.025",modem="m1"} 1.0' in text


async def test_a_standard_client_reads_it_and_gets_404_elsewhere() -> None:
    metrics = _metrics()
    async with await serve(metrics, "localhost", 0) as server:
        url = f"http://127.0.0.1:{server.port}"

        def fetch(path: str) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(url + path, timeout=5) as response:
                    return int(response.status), bytes(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        code, body = await asyncio.to_thread(fetch, "/metrics")
        assert code == 200
        assert b"simbank_modems" in body
        code, body = await asyncio.to_thread(fetch, "/metrics?name[]=simbank_modems")
        assert code == 200
        assert await asyncio.to_thread(fetch, "/") == (404, b"not found; try /metrics\n")
        code, _ = await asyncio.to_thread(fetch, "/metrics/x")
        assert code == 404


async def test_other_methods_and_garbage() -> None:
    async with await serve(Metrics(), port=0) as server:
        status, _, _ = await _http(server.port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert status == "HTTP/1.1 405 Method Not Allowed"
        status, _, _ = await _http(server.port, b"hello\r\n\r\n")
        assert status == "HTTP/1.1 400 Bad Request"
        status, _, _ = await _http(server.port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
        assert status == "HTTP/1.1 431 Request Header Fields Too Large"


async def test_the_series_follow_the_daemon() -> None:
    metrics = _metrics()
    async with await serve(metrics, port=0) as server:
        metrics.observe_modem(ModemState(id="m1", port="/dev/ttyUSB2", state="offline"))
        _, _, body = await _http(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert 'simbank_modem_up{modem="m1"} 0.0' in body.decode()
    assert 'simbank_modems{state="offline"} 1.0' in body.decode()


async def test_close_ends_a_silent_connection() -> None:
    server = await serve(Metrics(), port=0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /met")  # and nothing more
    await writer.drain()
    await asyncio.sleep(0.1)
    server.close()
    async with asyncio.timeout(5):
        await server.wait_closed()
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org", ""])
async def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="non-loopback"):
        await serve(Metrics(), host, 0)


async def test_allow_remote_binds_all_interfaces() -> None:
    async with await serve(Metrics(), "0.0.0.0", 0, allow_remote=True) as server:
        status, _, _ = await _http(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert status == "HTTP/1.1 200 OK"


async def test_ipv6_loopback() -> None:
    try:
        server = await serve(Metrics(), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with server:
        reader, writer = await asyncio.open_connection("::1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
        async with asyncio.timeout(5):
            raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.1 200 OK")
