"""``client_options``: what the daemon hands aiomqtt, and what it refuses to hand it."""

from __future__ import annotations

import ssl
import subprocess
import traceback
from pathlib import Path

import aiomqtt
import pytest

from simbank.config.models import MqttConfig
from simbank.errors import ConfigError
from simbank.mqtt import client_options

SECRET = "s3cret-Pa55-9f2c"


def _cfg(**fields: object) -> MqttConfig:
    return MqttConfig.model_validate(fields)


def _options(cfg: MqttConfig) -> dict[str, object]:
    return client_options(cfg, "simbankd-gw1", "simbank/gw1/bridge/state")


def _everything_said(error: BaseException) -> str:
    """The message, the config lines and the whole chained traceback, as a log would hold."""
    lines = getattr(error, "lines", [])
    return "\n".join([str(error), *lines, *traceback.format_exception(error)])


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "mqtt.password"
    path.write_text(f"{SECRET}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cert_and_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed EC certificate and its key, made by the openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "1", "-subj", "/CN=simbank-unit-test",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


# -- a password never crosses the network in clear ------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "broker.example.com",
        "10.0.0.5",
        "192.168.1.1",
        "0.0.0.0",
        "::2",
        "fe80::1",
        "127.0.0.1.nip.io",  # a name that merely starts with 127. resolves anywhere
        "127.example.com",
        "localhost.example.com",
    ],
)
def test_a_password_in_clear_to_a_remote_broker_is_refused(host: str, password_file: Path) -> None:
    cfg = _cfg(host=host, username="gw1", password_file=password_file)
    with pytest.raises(ConfigError, match="refusing to send a password without TLS") as refused:
        _options(cfg)
    said = _everything_said(refused.value)
    assert "allow_insecure" in said and "tls_ca" in said  # the two ways out
    assert SECRET not in said


def test_allow_insecure_sends_the_password_anyway(password_file: Path) -> None:
    cfg = _cfg(host="10.0.0.5", username="gw1", password_file=password_file, allow_insecure=True)
    assert _options(cfg)["password"] == SECRET


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "localhost", "LOCALHOST", "localhost.",
     "::ffff:127.0.0.1"],
)  # fmt: skip
def test_a_loopback_broker_gets_the_password_without_tls(host: str, password_file: Path) -> None:
    options = _options(_cfg(host=host, username="gw1", password_file=password_file))
    assert options["password"] == SECRET
    assert options["username"] == "gw1"
    assert options["tls_context"] is None


def test_tls_lets_the_password_go_to_a_remote_broker(
    password_file: Path, cert_and_key: tuple[Path, Path]
) -> None:
    cert, _ = cert_and_key
    cfg = _cfg(host="broker.example.com", username="gw1", password_file=password_file, tls_ca=cert)
    options = _options(cfg)
    assert options["password"] == SECRET
    context = options["tls_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_a_user_name_alone_is_no_secret_and_goes_anywhere() -> None:
    options = _options(_cfg(host="broker.example.com", username="monitor"))
    assert options["username"] == "monitor"
    assert options["password"] is None


def test_no_credentials_at_all() -> None:
    options = _options(_cfg())
    assert options["username"] is None
    assert options["password"] is None
    assert options["tls_context"] is None


# -- the password file ----------------------------------------------------------------------------


def test_the_first_line_is_the_password(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(f"  {SECRET}  \nsecond line is ignored\n", encoding="utf-8")
    assert _options(_cfg(username="gw1", password_file=path))["password"] == SECRET


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mqtt.password"
    with pytest.raises(ConfigError) as missing:
        _options(_cfg(username="gw1", password_file=path))
    assert str(path) in str(missing.value)
    assert "mqtt.password_file" in str(missing.value)
    assert "No such file or directory" in str(missing.value)


@pytest.mark.parametrize("content", ["", "\n", "   \nsecond\n"])
def test_an_empty_password_file_is_refused_not_sent_as_no_password(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "empty.password"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty") as empty:
        _options(_cfg(username="gw1", password_file=path))
    assert str(path) in str(empty.value)


def test_a_directory_is_not_a_password_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read"):
        _options(_cfg(username="gw1", password_file=tmp_path))


def test_a_binary_password_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "binary.password"
    path.write_bytes(b"\xff\xfe" + SECRET.encode() + b"\x80\n")
    with pytest.raises(ConfigError, match="not UTF-8") as binary:
        _options(_cfg(username="gw1", password_file=path))
    said = _everything_said(binary.value)
    assert str(path) in said
    assert SECRET not in said
    assert "\\xff" not in said


def test_a_password_without_a_user_name_is_refused(password_file: Path) -> None:
    # aiomqtt would drop a password that comes without a user name, silently.
    with pytest.raises(ConfigError, match="username") as refused:
        _options(_cfg(password_file=password_file))
    assert SECRET not in _everything_said(refused.value)


# -- TLS files --------------------------------------------------------------------------------------


def test_client_certificate_is_loaded(cert_and_key: tuple[Path, Path]) -> None:
    cert, key = cert_and_key
    options = _options(_cfg(tls_ca=cert, tls_cert=cert, tls_key=key))
    assert isinstance(options["tls_context"], ssl.SSLContext)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match=r"mqtt\.tls_ca: cannot load") as missing:
        _options(_cfg(tls_ca=path))
    assert str(path) in str(missing.value)


def test_a_ca_file_without_a_certificate_is_named(password_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.tls_ca: cannot load") as garbage:
        _options(_cfg(username="gw1", password_file=password_file, tls_ca=password_file))
    assert str(password_file) in str(garbage.value)
    assert SECRET not in _everything_said(garbage.value)


def test_a_key_that_does_not_match_is_named(
    tmp_path: Path, cert_and_key: tuple[Path, Path]
) -> None:
    cert, _ = cert_and_key
    wrong_key = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(wrong_key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    with pytest.raises(ConfigError, match=r"mqtt\.tls_cert/tls_key: cannot load") as mismatch:
        _options(_cfg(tls_ca=cert, tls_cert=cert, tls_key=wrong_key))
    assert str(wrong_key) in str(mismatch.value)


def test_an_encrypted_key_is_refused_instead_of_prompting(
    tmp_path: Path, cert_and_key: tuple[Path, Path]
) -> None:
    cert, key = cert_and_key
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "ec", "-in", str(key), "-aes256", "-passout", f"pass:{SECRET}",
         "-out", str(encrypted)],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="is encrypted") as refused:
        _options(_cfg(tls_ca=cert, tls_cert=cert, tls_key=encrypted))
    assert str(encrypted) in str(refused.value)
    assert SECRET not in _everything_said(refused.value)


def test_a_client_certificate_without_a_ca_is_refused(cert_and_key: tuple[Path, Path]) -> None:
    cert, key = cert_and_key
    with pytest.raises(ConfigError, match="needs tls_ca"):
        _options(_cfg(tls_cert=cert, tls_key=key))


# -- protocol, identity, will ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "version"),
    [("3.1.1", aiomqtt.ProtocolVersion.V311), ("5", aiomqtt.ProtocolVersion.V5)],
)
def test_the_protocol_version_is_chosen(protocol: str, version: aiomqtt.ProtocolVersion) -> None:
    assert _options(_cfg(protocol=protocol))["protocol"] is version


def test_identity_keepalive_and_last_will() -> None:
    options = _options(_cfg(host="127.0.0.1", port=1884, keepalive_s=17))
    assert (options["hostname"], options["port"], options["keepalive"]) == ("127.0.0.1", 1884, 17)
    assert options["identifier"] == "simbankd-gw1"
    will = options["will"]
    assert isinstance(will, aiomqtt.Will)
    assert will.topic == "simbank/gw1/bridge/state"
    assert will.payload == b'{"state":"offline"}'
    assert (will.qos, will.retain) == (1, True)
