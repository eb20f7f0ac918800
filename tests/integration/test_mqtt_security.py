"""MQTT security against a real mosquitto: a password file made by ``mosquitto_passwd``, an
ACL that keeps one user out of a gateway's request topics, TLS with client certificates made
by the ``openssl`` CLI, and MQTT 3.1.1 and 5 end to end. Every listener is on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest
import structlog
from bankrig import BankRig, running

from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto, TlsListener, make_password_file
from simbank.mqtt import MqttBridge, RequestClient, StateWatcher, client_options
from simbank.simulator import Scenario
from simbank.simulator.at_server import CommandLine
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.store.ledger import LEDGER_FILE

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.2, talk_s=5.0, ussd_s=0.2, rssi_period_s=5)
ONE_MODEM = Scenario(
    time_scale=1.0,
    timing=FAST,
    modems=[
        ModemSpec(
            id="m1",
            dialect="quectel",
            slots=[SimSpec(iccid=make_iccid(700), registration_delay_s=0.2)],
        )
    ],
)
PASSWORDS = {"gw1": "gw1-Pa55-7c1e", "operator": "op-Pa55-39ad", "intruder": "in-Pa55-e02b"}
WRONG_PASSWORD = "wrong-Pa55-5b6f"


async def _until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


# -- a broker with users, passwords and an ACL -------------------------------------------------


@dataclass
class Secured:
    """A mosquitto refusing anonymous clients; ``cfg(user)`` is that user's MqttConfig."""

    broker: PrivateMosquitto
    base: str
    secrets: Path

    def cfg(self, user: str, *, password: str | None = None, protocol: str = "5") -> MqttConfig:
        path = self.secrets / f"{user}-{protocol}-{password is not None}"
        path.write_text(f"{password or PASSWORDS[user]}\n", encoding="utf-8")
        path.chmod(0o600)
        return MqttConfig.model_validate(
            {
                "host": self.broker.host,
                "port": self.broker.port,
                "base_topic": self.base,
                "username": user,
                "password_file": path,
                "protocol": protocol,
                "keepalive_s": 5,
            }
        )


@pytest.fixture
def secured(tmp_path: Path, base_topic: str) -> Iterator[Secured]:
    directory = tmp_path / "secured"
    password_file = make_password_file(directory / "passwd", PASSWORDS)
    acl = directory / "acl"
    acl.write_text(
        "# every gateway: its own tree, nothing else\n"
        f"pattern readwrite {base_topic}/%u/#\n"
        "# the operator reads everything and may send requests\n"
        "user operator\n"
        f"topic read {base_topic}/#\n"
        f"topic write {base_topic}/+/bridge/request/#\n"
        "# the intruder may read (so it would see an answer) but not write\n"
        "user intruder\n"
        f"topic read {base_topic}/#\n",
        encoding="utf-8",
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    broker = PrivateMosquitto(
        directory,
        password_file=password_file,
        acl_file=acl,
        # "Denied PUBLISH" is logged at debug level: the evidence the ACL test reads.
        log_types=("error", "warning", "notice", "information", "debug"),
    )
    broker.start()
    yield Secured(broker, base_topic, secrets)
    broker.stop()


@dataclass
class Seen:
    topic: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None


@dataclass
class Sniffer:
    messages: list[Seen] = field(default_factory=list)

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.messages if m.topic == topic]


@contextlib.asynccontextmanager
async def sniffing(cfg: MqttConfig, topic_filter: str, client_id: str) -> AsyncIterator[Sniffer]:
    """Record every message on ``topic_filter`` with its MQTT 5 properties (a v5 client)."""
    options = client_options(cfg.model_copy(update={"protocol": "5"}), client_id, "unused")
    options.pop("will")
    sniffer = Sniffer()
    async with aiomqtt.Client(**options) as client:  # type: ignore[arg-type]
        await client.subscribe(topic_filter, qos=1)

        async def record() -> None:
            async for message in client.messages:
                props = message.properties
                payload = message.payload
                sniffer.messages.append(
                    Seen(
                        str(message.topic),
                        payload if isinstance(payload, bytes) else b"",
                        getattr(props, "ResponseTopic", None) if props else None,
                        getattr(props, "CorrelationData", None) if props else None,
                    )
                )

        task = asyncio.create_task(record(), name=f"sniffer-{client_id}")
        try:
            yield sniffer
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _subscribed(rig: BankRig) -> None:
    """The rig's clients are up; wait until the daemon subscribed to its request topics too
    (a request published before that would be lost, and a test would pass for that reason)."""
    await asyncio.wait_for(rig.daemon.bridge.wait_connected(), 10)


def _bridge(cfg: MqttConfig, topics: Topics) -> MqttBridge:
    return MqttBridge(cfg, topics, "simbankd-gw1", info=lambda: b'{"v":1}')


def _failures(logs: Sequence[Mapping[str, object]]) -> list[str]:
    return [str(e["error"]) for e in logs if e["event"] == "mqtt_disconnected"]


# -- 1. user name + password file ----------------------------------------------------------------


async def test_the_right_password_connects_and_publishes_online(secured: Secured) -> None:
    topics = Topics(secured.base, "gw1")
    bridge = _bridge(secured.cfg("gw1"), topics)
    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(bridge.run(), name="gw1-bridge")
        await asyncio.wait_for(bridge.wait_connected(), 10)
        watcher = StateWatcher(secured.cfg("operator"), secured.base, "op-watch", gateway="gw1")
        await watcher.run(until_quiet_s=0.5)
        assert watcher.state[topics.bridge_state] == {"state": "online"}
        bridge.stop()
        await run
    assert "New client connected" in secured.broker.log_text()
    assert "u'gw1'" in secured.broker.log_text()


async def test_a_wrong_password_is_logged_and_retried_without_crashing(secured: Secured) -> None:
    bridge = _bridge(secured.cfg("gw1", password=WRONG_PASSWORD), Topics(secured.base, "gw1"))
    with structlog.testing.capture_logs() as logs:
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(bridge.run(), name="wrong-password-bridge")
            await _until(lambda: len(_failures(logs)) >= 2)
            assert not run.done(), "the bridge gave up instead of retrying"
            assert not bridge.connected
            bridge.stop()
        assert run.result() is None
    failures = _failures(logs)
    assert set(failures) == {"[code:135] Not authorized"}, failures
    assert bridge.connects == 0
    assert WRONG_PASSWORD not in repr(logs)
    assert secured.broker.log_text().count("disconnected, not authorised") >= 2


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_direct_connect_with_a_wrong_password_says_not_authorised(
    secured: Secured, protocol: str
) -> None:
    cfg = secured.cfg("gw1", password=WRONG_PASSWORD, protocol=protocol)
    with pytest.raises(aiomqtt.MqttCodeError) as wrong:
        async with aiomqtt.Client(**client_options(cfg, "direct", "w")):  # type: ignore[arg-type]
            pass
    # mosquitto answers CONNACK 5 (3.1.1) / 135 (5); paho reports both as reason code 135.
    assert str(wrong.value) == "[code:135] Not authorized"
    assert WRONG_PASSWORD not in str(wrong.value)
    anonymous = cfg.model_copy(update={"username": None, "password_file": None})
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with aiomqtt.Client(**client_options(anonymous, "anon", "w")):  # type: ignore[arg-type]
            pass
    async with aiomqtt.Client(**client_options(secured.cfg("gw1", protocol=protocol), "ok", "w")):  # type: ignore[arg-type]
        pass  # the same user with the right password is let in


# -- 2. the ACL ------------------------------------------------------------------------------------


async def test_the_acl_keeps_an_intruders_requests_from_the_gateway(
    tmp_path: Path, secured: Secured
) -> None:
    base = secured.base
    async with running(tmp_path, secured.broker, base, ONE_MODEM, mqtt=secured.cfg("gw1")) as rig:
        topics = rig.topics
        await _subscribed(rig)
        await rig.until(lambda: rig.watcher.state.get(topics.bridge_state) == {"state": "online"})
        async with (
            sniffing(secured.cfg("operator"), f"{topics.root}/#", "op-sniffer") as seen,
            RequestClient(secured.cfg("intruder"), topics, "intruder-1") as intruder,
            RequestClient(secured.cfg("operator"), topics, "operator-1") as operator,
        ):
            with pytest.raises(TimeoutError):
                await intruder.request("traffic/pause", {"reason": "intruder"}, timeout=1.5)
            with pytest.raises(TimeoutError):
                await intruder.request("call", {"number": "+15550100999"}, timeout=0.5)

            status = await operator.request("status")
            assert status["status"] == "ok", status
            assert status["data"]["traffic"]["paused"] is False
            assert rig.daemon.runtime.paused_reason is None
            # The sniffer caught up with the status answer, published after both intrusions:
            # what it has not seen by now was never published.
            await _until(lambda: seen.on(topics.response("status")))
            # The broker dropped both publishes; nobody (the daemon included) ever saw them.
            log = secured.broker.log_text()
            for command in ("traffic/pause", "call"):
                topic = re.escape(topics.request(command))
                denied = rf"Denied PUBLISH from intruder-1 \(d0, q1, r0, m\d+, '{topic}'"
                assert re.search(denied, log), log
            assert not seen.on(topics.request("traffic/pause"))
            assert not seen.on(topics.response("traffic/pause"))
            assert not seen.on(topics.response("call"))
            assert not any("/clients/intruder-1/" in m.topic for m in seen.messages)

            # Control: the very same request from the operator is carried out.
            paused = await operator.request("traffic/pause", {"reason": "operator"})
            assert paused["status"] == "ok", paused
            status = await operator.request("status")
            assert status["data"]["traffic"]["paused"] is True
            assert status["data"]["traffic"]["pause_reason"] == "operator"


FLOOD = Path(__file__).resolve().parents[2] / "bench" / "flood.py"
INTRUDER_ACTIONS = {"call": 1, "sms": 1, "select": 1, "pause": 1}


async def test_an_intruders_flood_of_actions_is_never_executed(
    tmp_path: Path, secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 calls, texts, switches and pauses a second, for 2 s, from a user the ACL keeps out
    of the request topics: the broker drops every one; the daemon never receives any (its
    counters), books nothing (the ledger file), dials and texts nothing (every command line
    the simulated modem got), answers nothing (a sniffer), and still serves the operator."""
    commands: list[str] = []
    handle = SimulatedModem._handle

    def recording(self: SimulatedModem, event: object) -> object:
        if isinstance(event, CommandLine):
            commands.append(event.text)
        return handle(self, event)

    monkeypatch.setattr(SimulatedModem, "_handle", recording)
    intruder = secured.cfg("intruder", protocol="3.1.1")
    assert intruder.password_file is not None
    async with running(
        tmp_path, secured.broker, secured.base, ONE_MODEM, mqtt=secured.cfg("gw1")
    ) as rig:
        topics = rig.topics
        await _subscribed(rig)
        await rig.until(rig.modems_ready)
        async with (
            sniffing(secured.cfg("operator"), f"{topics.root}/#", "op-sniffer-flood") as seen,
            RequestClient(secured.cfg("operator"), topics, "operator-flood") as operator,
        ):
            received, handled = rig.daemon.bridge.received, rig.daemon.router.handled
            start = len(commands)
            flood = await asyncio.create_subprocess_exec(
                sys.executable, str(FLOOD),
                "--port", str(secured.broker.port), "--base", secured.base, "--gateway", "gw1",
                "--username", "intruder", "--password-file", str(intruder.password_file),
                "--client-id", "intruder-flood", "--rate", "5000", "--duration", "2",
                "--call-number", "+15550142", "--mix", json.dumps(INTRUDER_ACTIONS),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(flood.communicate(), 60)
            assert flood.returncode == 0, err.decode()
            sent = json.loads(out.decode().splitlines()[-1])
            assert sent["figure"] == "flood" and sent["sent"] >= 5000, sent
            assert set(sent["by_kind"]) == set(INTRUDER_ACTIONS)

            # The operator is served right after; only then is "nothing arrived" meaningful.
            status = await operator.request("status", timeout=10)
            assert status["status"] == "ok", status
            assert status["data"]["traffic"]["paused"] is False
            assert rig.daemon.runtime.paused_reason is None
            assert rig.daemon.bridge.received == received + 1  # the operator's status only
            assert rig.daemon.router.handled == handled + 1
            await _until(lambda: seen.on(topics.response("status")))  # the sniffer caught up
        log = secured.broker.log_text()
        denied = re.findall(r"Denied PUBLISH from intruder-flood \(d0, q0, r0, m0, '([^']+)'", log)
        assert len(denied) == sent["sent"], (len(denied), sent)
        assert {t.removeprefix(topics.request_prefix) for t in denied} == {
            "call", "sms/send", "sim/select", "traffic/pause"
        }  # fmt: skip
        assert not [
            m
            for m in seen.messages
            if "/bridge/request/" in m.topic and m.topic != topics.request("status")
        ]
        responses = [m.topic for m in seen.messages if m.topic.startswith(topics.response_prefix)]
        assert responses == [topics.response("status")], responses
    # From the flood on the modem was only polled: no dial, no text, no slot switch.
    acted = ("ATD", "AT+CMGS", "AT+QUIMSLOT=", "AT+QDSIM=", "AT+CFUN=")
    assert not [c for c in commands[start:] if c.startswith(acted)], commands[start:]
    assert "AT+CSQ" in commands[start:]
    assert rig.bank.modems["m1"].sent_sms == []
    ledger = tmp_path / "state" / LEDGER_FILE
    with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT COUNT(*) FROM usage").fetchone() == (0,)
        audit = [a for (a,) in db.execute("SELECT action FROM audit WHERE actor = 'operator'")]
    assert audit == [], audit


# -- 3. TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    return cert, key


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, csr = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{extensions}\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext_file),
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an
    unrelated CA; EC P-256 keys, made by the openssl CLI in well under a second."""
    directory = tmp_path_factory.mktemp("pki")
    ca = _ca(directory, "test-ca")
    server = _leaf(
        directory,
        "server",
        ca,
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost",
    )
    client = _leaf(directory, "client", ca, "extendedKeyUsage=clientAuth")
    other_ca, _ = _ca(directory, "other-ca")
    return Pki(ca[0], server[0], server[1], client[0], client[1], other_ca)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[PrivateMosquitto]:
    tls = TlsListener(pki.ca, pki.server_cert, pki.server_key, require_certificate=True)
    broker = PrivateMosquitto(tmp_path / "tls-mqtt", tls=tls)
    broker.start()
    yield broker
    broker.stop()


def _tls_cfg(broker: PrivateMosquitto, pki: Pki, **changes: object) -> MqttConfig:
    assert broker.tls_port is not None
    data: dict[str, object] = {
        "host": "127.0.0.1",
        "port": broker.tls_port,
        "tls_ca": pki.ca,
        "tls_cert": pki.client_cert,
        "tls_key": pki.client_key,
        "keepalive_s": 5,
    }
    return MqttConfig.model_validate(data | changes)


async def test_the_daemon_connects_over_tls_with_its_client_certificate(
    tmp_path: Path, tls_broker: PrivateMosquitto, pki: Pki, base_topic: str
) -> None:
    cfg = _tls_cfg(tls_broker, pki, base_topic=base_topic)
    async with running(tmp_path, tls_broker, base_topic, ONE_MODEM, mqtt=cfg) as rig:
        await _subscribed(rig)
        await rig.until(
            lambda: rig.watcher.state.get(rig.topics.bridge_state) == {"state": "online"}
        )
        answer = await rig.request("status")
        assert answer["status"] == "ok", answer
    # The daemon's connection came in on the TLS port, not on the plain one.
    log = tls_broker.log_text()
    source = re.search(r"New client connected from 127\.0\.0\.1:(\d+) as simbankd-gw1 ", log)
    assert source, log
    assert f"127.0.0.1:{source[1]} on port {tls_broker.tls_port}." in log
    # localhost is in the server certificate too.
    localhost = _tls_cfg(tls_broker, pki, host="localhost")
    async with aiomqtt.Client(**client_options(localhost, "by-name", "w")):  # type: ignore[arg-type]
        pass


async def test_a_wrong_ca_is_a_certificate_error(
    tls_broker: PrivateMosquitto, pki: Pki, base_topic: str
) -> None:
    cfg = _tls_cfg(tls_broker, pki, tls_ca=pki.other_ca, base_topic=base_topic)
    with pytest.raises(aiomqtt.MqttError, match=r"CERTIFICATE_VERIFY_FAILED") as wrong:
        async with aiomqtt.Client(**client_options(cfg, "wrong-ca", "w")):  # type: ignore[arg-type]
            pass
    assert "certificate verify failed" in str(wrong.value)
    # The daemon's bridge logs the same error and keeps retrying.
    bridge = _bridge(cfg, Topics(base_topic, "gw1"))
    with structlog.testing.capture_logs() as logs:
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(bridge.run(), name="wrong-ca-bridge")
            await _until(lambda: len(_failures(logs)) >= 2)
            assert not run.done()
            bridge.stop()
    assert all("CERTIFICATE_VERIFY_FAILED" in error for error in _failures(logs))
    assert "alert unknown ca" in tls_broker.log_text()


async def test_without_a_client_certificate_the_broker_refuses(
    tls_broker: PrivateMosquitto, pki: Pki
) -> None:
    cfg = _tls_cfg(tls_broker, pki, tls_cert=None, tls_key=None)
    options = client_options(cfg, "no-cert", "w") | {"timeout": 1.5}
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(**options):  # type: ignore[arg-type]
            pass
    assert "peer did not return a certificate" in tls_broker.log_text()


# -- 5. MQTT 3.1.1 and 5 ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_requests_round_trip_with_either_protocol(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, protocol: str
) -> None:
    cfg = MqttConfig.model_validate(
        {"port": mosquitto.port, "base_topic": base_topic, "protocol": protocol}
    )
    async with running(tmp_path, mosquitto, base_topic, ONE_MODEM, mqtt=cfg) as rig:
        await _subscribed(rig)
        topics = rig.topics
        async with sniffing(cfg, f"{topics.root}/#", f"sniff-{base_topic}") as seen:
            answers = await asyncio.gather(*(rig.request("status") for _ in range(3)))
            assert [a["status"] for a in answers] == ["ok"] * 3, answers
            transactions = [a["transaction"] for a in answers]
            assert len(set(transactions)) == 3  # each caller got its own answer
            await _until(lambda: len(seen.on(topics.response("status"))) >= 3)
        requests = seen.on(topics.request("status"))
        public = seen.on(topics.response("status"))
        private = [m for m in seen.messages if m.topic.endswith("/reply")]
        assert {json.loads(m.payload)["transaction"] for m in public} == set(transactions)
        if protocol == "3.1.1":
            # No MQTT 5 properties: the client listened on the public topic and matched the
            # transaction.
            assert [m.response_topic for m in requests] == [None] * 3
            assert not private
        else:
            reply_topic = f"{topics.root}/clients/client-{base_topic}/reply"
            assert {m.response_topic for m in requests} == {reply_topic}
            assert {m.correlation for m in private} == {m.correlation for m in requests}
            assert len(private) == 3


async def test_a_callers_own_transaction_is_matched_with_3_1_1(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    cfg = MqttConfig.model_validate(
        {"port": mosquitto.port, "base_topic": base_topic, "protocol": "3.1.1"}
    )
    async with running(tmp_path, mosquitto, base_topic, ONE_MODEM, mqtt=cfg) as rig:
        await _subscribed(rig)
        assert (await rig.request("status", timeout=20))["status"] == "ok"
        answer = await rig.request("status", transaction="chosen-by-caller", timeout=20)
        assert answer["transaction"] == "chosen-by-caller"


# -- the shipped examples in config/mosquitto/ ---------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "mosquitto"


def _example(name: str, replacements: dict[str, str]) -> str:
    """A shipped example with its paths, addresses and ports swapped for the test's; every
    ``old`` must be in the file, so the test notices when the example changes under it."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"{name} no longer contains {old!r}"
        text = text.replace(old, new)
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in {"listener", "address"}:
            assert words[-1].startswith("127.0.0.1"), f"not loopback: {line!r}"
    return text


async def _publish(
    cfg: MqttConfig, client_id: str, topic: str, payload: bytes, *, retain: bool = False
) -> None:
    options = client_options(cfg, client_id, "unused")
    options.pop("will")
    async with aiomqtt.Client(**options) as client:  # type: ignore[arg-type]
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_the_example_broker_config_and_acl(tmp_path: Path, pki: Pki) -> None:
    users = {"gw1": "gw1-pw", "gw2": "gw2-pw", "monitor": "mon-pw", "operator": "op-pw"}
    passwd = make_password_file(tmp_path / "passwd", users)
    conf = _example(
        "mosquitto.conf",
        {
            "listener 1883 127.0.0.1": "listener {port} 127.0.0.1",
            "listener 8883\n": "listener {tls_port} 127.0.0.1\n",
            "/etc/mosquitto/simbank/passwd": str(passwd),
            "/etc/mosquitto/simbank/acl": str(EXAMPLES / "acl"),  # the shipped ACL itself
            "/etc/mosquitto/simbank/certs/ca.crt": str(pki.ca),
            "/etc/mosquitto/simbank/certs/server.crt": str(pki.server_cert),
            "/etc/mosquitto/simbank/certs/server.key": str(pki.server_key),
            "/var/lib/mosquitto/": f"{tmp_path}/",
            "log_dest syslog": "log_dest file {log_path}\nlog_type debug",
        },
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    async with PrivateMosquitto(tmp_path / "broker", template=conf) as broker:

        def cfg(user: str, **changes: object) -> MqttConfig:
            (secrets / user).write_text(users[user], encoding="utf-8")
            data = {"port": broker.port, "username": user, "password_file": secrets / user}
            return MqttConfig.model_validate(data | changes)

        gw1 = Topics("simbank", "gw1")
        async with (
            sniffing(cfg("monitor"), "simbank/#", "monitor-sniffer") as monitor_saw,
            sniffing(cfg("gw1"), f"{gw1.request_prefix}#", "gw1-requests") as gw1_got,
            sniffing(cfg("gw2"), "simbank/gw1/#", "gw2-snooping") as gw2_saw,
        ):
            await _publish(cfg("gw1"), "gw1", gw1.bridge_state, b'{"state":"online"}', retain=True)
            spoof = Topics("simbank", "gw2").bridge_state
            await _publish(cfg("gw1"), "gw1-spoof", spoof, b'{"state":"offline"}', retain=True)
            await _publish(cfg("monitor"), "monitor-1", gw1.request("traffic/pause"), b"{}")
            await _publish(cfg("operator"), "operator-1", gw1.request("status"), b"{}")
            await _until(lambda: gw1_got.messages)
            await _until(lambda: monitor_saw.on(gw1.request("status")))
        # The gateway got the operator's request and nothing else.
        assert [m.topic for m in gw1_got.messages] == [gw1.request("status")]
        # The monitor reads everything that was allowed through: gw1's state, the request.
        assert monitor_saw.on(gw1.bridge_state)
        assert not monitor_saw.on(spoof)
        assert not monitor_saw.on(gw1.request("traffic/pause"))
        # Another gateway sees nothing of gw1.
        assert not gw2_saw.messages
        log = broker.log_text()
        assert "Denied PUBLISH from gw1-spoof" in log
        assert "Denied PUBLISH from monitor-1" in log
        # The TLS listener takes the same users.
        assert broker.tls_port is not None
        over_tls = cfg("monitor", port=broker.tls_port, tls_ca=pki.ca)
        watcher = StateWatcher(over_tls, "simbank", "monitor-tls", gateway="gw1")
        await watcher.run(until_quiet_s=0.3)
        assert watcher.state[gw1.bridge_state] == {"state": "online"}
        (secrets / "wrong").write_text(users["operator"], encoding="utf-8")
        with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
            await _publish(cfg("monitor", password_file=secrets / "wrong"), "bad", "x", b"")


async def test_the_example_bridge_remaps_topics_to_the_central_broker(
    tmp_path: Path, pki: Pki
) -> None:
    tls = TlsListener(pki.ca, pki.server_cert, pki.server_key)
    async with PrivateMosquitto(tmp_path / "central", tls=tls) as central:
        bridge = _example(
            "bridge.conf",
            {
                "central.example.net:8883": f"127.0.0.1:{central.tls_port}",
                "/etc/mosquitto/simbank/certs/central-ca.crt": str(pki.ca),
            },
        )
        async with PrivateMosquitto(tmp_path / "gateway", extra_conf=bridge) as gateway:
            local = MqttConfig(port=gateway.port, base_topic="simbank")
            fleet = MqttConfig.model_validate(
                {
                    "port": central.tls_port,
                    "tls_ca": pki.ca,
                    "base_topic": "fleet/site-a",
                    "protocol": "3.1.1",  # MQTT 5 reply topics are not remapped by a bridge
                }
            )
            async with (
                sniffing(fleet, "fleet/#", "central-sniffer") as central_saw,
                running(tmp_path, gateway, "simbank", ONE_MODEM, mqtt=local) as rig,
            ):
                await _subscribed(rig)
                remote = Topics("fleet/site-a", "gw1")
                await _until(lambda: central_saw.on(remote.bridge_state))
                async with RequestClient(fleet, remote, "fleet-operator") as operator:
                    answer = await operator.request("status", timeout=10)
                assert answer["status"] == "ok", answer
                assert json.loads(central_saw.on(remote.bridge_state)[-1].payload) == {
                    "state": "online"
                }
                assert central_saw.on("fleet/site-a/gw1/uplink")[0].payload == b"1"
                # The request crossed once and was not sent back out.
                assert len(central_saw.on(remote.request("status"))) == 1


async def test_a_response_topic_outside_the_client_replies_is_not_answered_on(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A client that may send requests cannot make the gateway publish where it likes: an
    MQTT 5 Response Topic on the gateway's own state, a Home Assistant discovery topic or
    another gateway gets the public answer only; a client reply topic gets its copy."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    cfg = MqttConfig.model_validate({"port": mosquitto.port, "base_topic": base_topic})
    async with running(tmp_path, mosquitto, base_topic, ONE_MODEM, mqtt=cfg) as rig:
        await _subscribed(rig)
        topics = rig.topics
        hijacks = [
            topics.bridge_state,
            "homeassistant/sensor/simbank_gw1/x/config",
            f"{base_topic}/gw2/clients/c/reply",
            f"{topics.root}/clients/c/reply/more",
            f"{topics.root}/clients//reply",
        ]
        good = topics.reply("honest")
        async with (
            sniffing(cfg, "#", f"sniff-{base_topic}") as seen,
            aiomqtt.Client(
                "127.0.0.1",
                mosquitto.port,
                identifier=f"asker-{base_topic}",
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as asker,
        ):
            for n, topic in enumerate([*hijacks, good]):
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.ResponseTopic = topic
                props.CorrelationData = f"c{n}".encode()
                payload = json.dumps({"transaction": f"t{n}"}).encode()
                await asker.publish(topics.request("status"), payload, qos=1, properties=props)
            await _until(lambda: len(seen.on(topics.response("status"))) >= len(hijacks) + 1)
            await _until(lambda: seen.on(good))
        for topic in hijacks:
            assert not [m for m in seen.on(topic) if b'"status"' in m.payload], topic
        assert [json.loads(m.payload)["transaction"] for m in seen.on(good)] == [f"t{len(hijacks)}"]
        assert [m.correlation for m in seen.on(good)] == [f"c{len(hijacks)}".encode()]
