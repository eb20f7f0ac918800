"""The relay's pure logic: which frames from the page it acts on, and what topics are."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.web.protocol import (
    DASHBOARD_COMMANDS,
    MAX_FRAME_BYTES,
    FrameError,
    Login,
    RequestFrame,
    TopicRef,
    classify,
    decode_payload,
    parse_frame,
    reply_topic,
    subscriptions,
)

ICCID = "89990100000000014014"


def _request(**changes: object) -> str:
    frame = {
        "type": "request",
        "id": "r1",
        "gateway": "gw1",
        "command": "sim/release",
        "payload": {"iccid": ICCID, "note": "carrier ticket 42"},
    }
    frame.update(changes)
    return json.dumps(frame)


def test_a_login_is_read_and_never_shows_its_password() -> None:
    login = parse_frame('{"type": "login", "username": "operator", "password": "s3cret"}')
    assert login == Login("operator", "s3cret")
    assert "s3cret" not in repr(login)


def test_a_contract_request_is_checked_against_the_contract_model() -> None:
    frame = parse_frame(_request())
    assert frame == RequestFrame(
        "r1", "gw1", "sim/release", {"iccid": ICCID, "note": "carrier ticket 42"}
    )
    pause = parse_frame(_request(command="traffic/pause", payload={}))
    assert isinstance(pause, RequestFrame)
    assert pause.payload == {}


@pytest.mark.parametrize(
    ("frame", "problem", "request_id"),
    [
        ("not json", "not JSON", None),
        (b"\xff\xfe", "not JSON", None),
        ("[1, 2]", "a frame is a JSON object", None),
        ('{"type": "subscribe"}', "unknown frame type", None),
        ('{"type": "login", "username": ""}', "username", None),
        ('{"type": "login", "username": "a\\u0000b", "password": ""}', "control", None),
        ('{"type": "login", "username": "op", "password": 5}', "password", None),
        ('{"type": "login", "username": "op", "password": "", "x": 1}', "only", None),
        (_request(id="has space"), "id:", None),
        (_request(gateway="+"), "gateway", "r1"),
        (_request(gateway="gw1/bridge"), "gateway", "r1"),
        (_request(gateway="#"), "gateway", "r1"),
        (_request(command="call"), "not one the dashboard sends", "r1"),
        (_request(command="sim/release/../x"), "not one the dashboard sends", "r1"),
        (_request(payload=[]), "payload: a JSON object", "r1"),
        (_request(payload={"iccid": ICCID}), "note", "r1"),
        (_request(payload={"iccid": "123", "note": "x"}), "iccid", "r1"),
        (_request(payload={"iccid": ICCID, "note": "x", "number": "+15550100"}), "number", "r1"),
        (_request(payload={"iccid": ICCID, "note": "x", "transaction": "t"}), "transaction", "r1"),
        (_request(extra=1), "unknown field", "r1"),
    ],
)
def test_what_the_relay_refuses(frame: str | bytes, problem: str, request_id: str | None) -> None:
    with pytest.raises(FrameError, match=problem) as refused:
        parse_frame(frame)
    assert refused.value.request_id == request_id


def test_an_oversized_frame_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(FrameError, match="too large"):
        parse_frame("x" * (MAX_FRAME_BYTES + 1))


def test_the_dashboard_sends_only_operator_actions_and_questions() -> None:
    assert "call" not in DASHBOARD_COMMANDS
    assert "sms/send" not in DASHBOARD_COMMANDS
    assert {"sim/release", "sim/disable", "sim/enable", "sim/rotate"} <= DASHBOARD_COMMANDS
    assert {"traffic/pause", "traffic/resume"} <= DASHBOARD_COMMANDS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["login", "request"]),
                "id": json_values,
                "gateway": json_values,
                "command": st.sampled_from(sorted(DASHBOARD_COMMANDS)) | st.text(),
                "payload": json_values,
                "username": json_values,
                "password": json_values,
            }
        ).map(json.dumps),
    )
)
def test_any_input_is_a_frame_or_a_frame_error(data: str | bytes) -> None:
    try:
        frame = parse_frame(data)
    except FrameError:
        return
    assert isinstance(frame, Login | RequestFrame)


@pytest.mark.parametrize(
    ("topic", "ref"),
    [
        ("simbank/gw1/bridge/state", TopicRef("gw1", "state")),
        ("simbank/gw1/bridge/info", TopicRef("gw1", "info")),
        ("simbank/gw1/bridge/event", TopicRef("gw1", "event")),
        ("simbank/gw1/modem/m1", TopicRef("gw1", "modem", "m1")),
        (f"simbank/gw1/sim/{ICCID}", TopicRef("gw1", "sim", ICCID)),
        ("simbank/gw1/clients/web-1/reply", TopicRef("gw1", "reply", "web-1")),
        ("simbank/gw1/bridge/request/status", None),
        ("simbank/gw1/bridge/response/status", None),
        ("simbank/gw1/modem/m1/extra", None),
        ("simbank/gw1/modem/", None),
        ("other/gw1/bridge/state", None),
        ("simbank//bridge/state", None),
    ],
)
def test_topics_are_classified(topic: str, ref: TopicRef | None) -> None:
    assert classify("simbank", topic) == ref


def test_a_base_with_levels() -> None:
    assert classify("site/a", "site/a/gw2/modem/m9") == TopicRef("gw2", "modem", "m9")
    assert classify("site/a", "site/b/gw2/modem/m9") is None


def test_the_session_follows_state_events_and_its_own_replies() -> None:
    filters = subscriptions("simbank", "web-1")
    assert "simbank/+/modem/+" in filters
    assert "simbank/+/sim/+" in filters
    assert "simbank/+/bridge/event" in filters
    assert "simbank/+/clients/web-1/reply" in filters
    assert not any("request" in f or f.endswith("#") for f in filters)
    # The reply topic sits in the gateway's own tree, where the shipped ACL lets it write.
    assert reply_topic("simbank", "gw1", "web-1") == "simbank/gw1/clients/web-1/reply"
    assert classify("simbank", reply_topic("simbank", "gw1", "web-1")) == TopicRef(
        "gw1", "reply", "web-1"
    )


def test_payloads() -> None:
    assert decode_payload(b"") is None
    assert decode_payload(b'{"state": "online"}') == {"state": "online"}
    with pytest.raises(ValueError, match="object"):
        decode_payload(b"[1]")
    with pytest.raises(ValueError):
        decode_payload(b"not json")
