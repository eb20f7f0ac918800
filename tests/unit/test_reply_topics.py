"""Which MQTT 5 Response Topics a gateway answers on (``Topics.is_reply``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.contract import Topics

TOPICS = Topics("simbank", "gw1")


@pytest.mark.parametrize(
    ("topic", "answered"),
    [
        ("simbank/gw1/clients/ctl-1/reply", True),
        ("simbank/gw1/clients/web-ab12/reply", True),
        ("simbank/gw1/bridge/state", False),
        ("simbank/gw1/bridge/response/status", False),
        ("simbank/gw2/clients/c/reply", False),
        ("simbank/gw1/clients//reply", False),
        ("simbank/gw1/clients/a/b/reply", False),
        ("simbank/gw1/clients/+/reply", False),
        ("simbank/gw1/clients/c/reply/more", False),
        ("homeassistant/button/simbank_gw1/x/config", False),
        ("simbank/gw10/clients/c/reply", False),
        ("", False),
    ],
)
def test_only_a_client_reply_topic_is_answered_on(topic: str, answered: bool) -> None:
    assert TOPICS.is_reply(topic) is answered


@given(st.text(min_size=1).filter(lambda s: not any(c in s for c in "/+#\0")))
def test_the_reply_topic_of_any_client_id_is_answered_on(client_id: str) -> None:
    assert TOPICS.is_reply(TOPICS.reply(client_id))


@given(st.text())
def test_nothing_outside_the_gateways_clients_is(topic: str) -> None:
    if TOPICS.is_reply(topic):
        assert topic.startswith("simbank/gw1/clients/")
        assert topic.endswith("/reply")
        assert topic.count("/") == 4
