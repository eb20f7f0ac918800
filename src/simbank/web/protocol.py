"""What the page and the relay say to each other over the WebSocket, as pure functions.

The page sends JSON text frames:

- ``{"type": "login", "username": "...", "password": "..."}``: log in to the broker as that
  user (the only credentials the relay ever uses);
- ``{"type": "request", "id": "...", "gateway": "gw1", "command": "sim/release",
  "payload": {...}}``: one contract request (``docs/mqtt-api.md``), limited to the commands
  in :data:`DASHBOARD_COMMANDS` and checked against the contract's model before it is sent.

The relay answers with ``login_ok``/``login_failed`` (``login_delayed`` with ``seconds``
first when recent refused logins from the page's address make it wait), ``message`` (a
contract topic: its gateway, kind, key and decoded payload; ``null`` when a retained topic
was cleared), ``response`` (the gateway's answer), ``refused`` (the broker would not take the
request, or nobody answered in time), ``error`` (bad input) and ``broker_lost``. Nothing here
does I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from simbank.contract import COMMANDS, MAX_REQUEST_BYTES

#: What the page may ask a gateway: the operator's actions and the two read-only questions.
#: Calls, texts, USSD and slot selection stay with simbankctl: a dashboard click should not
#: dial or spend a SIM's quota.
DASHBOARD_COMMANDS = frozenset(
    {
        "status",
        "sim/report",
        "sim/release",
        "sim/disable",
        "sim/enable",
        "sim/rotate",
        "traffic/pause",
        "traffic/resume",
    }
)
assert COMMANDS.keys() >= DASHBOARD_COMMANDS

#: Largest WebSocket frame the relay reads from a page.
MAX_FRAME_BYTES = MAX_REQUEST_BYTES + 4096

_GATEWAY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_USERNAME = 128
MAX_PASSWORD = 1024


class FrameError(ValueError):
    """A frame from the page the relay will not act on; ``request_id`` when it named one."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"Login(username={self.username!r})"


@dataclass(frozen=True, slots=True)
class RequestFrame:
    """A request the contract accepts; ``payload`` is what goes to the broker, without
    ``transaction`` (the relay sets its own)."""

    id: str
    gateway: str
    command: str
    payload: dict[str, Any]


def parse_frame(data: str | bytes) -> Login | RequestFrame:
    """The page's frame, checked; :class:`FrameError` says what is wrong with it."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame too large ({len(data)} > {MAX_FRAME_BYTES} bytes)")
    try:
        frame = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FrameError("not JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("a frame is a JSON object")
    kind = frame.get("type")
    if kind == "login":
        return _login(frame)
    if kind == "request":
        return _request(frame)
    raise FrameError(f"unknown frame type {_short(kind)} (expected login or request)")


def _login(frame: dict[str, Any]) -> Login:
    if set(frame) - {"type", "username", "password"}:
        raise FrameError("a login holds only username and password")
    username, password = frame.get("username"), frame.get("password")
    if not isinstance(username, str) or not 1 <= len(username) <= MAX_USERNAME:
        raise FrameError(f"username: a text of 1 to {MAX_USERNAME} characters")
    if _CONTROL.search(username):
        raise FrameError("username: no control characters")
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise FrameError(f"password: a text of at most {MAX_PASSWORD} characters")
    return Login(username, password)


def _request(frame: dict[str, Any]) -> RequestFrame:
    request_id = frame.get("id")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise FrameError("id: 1 to 64 letters, digits or _.:-")
    if extra := set(frame) - {"type", "id", "gateway", "command", "payload"}:
        raise FrameError(f"unknown field(s): {', '.join(sorted(map(_short, extra)))}", request_id)
    gateway = frame.get("gateway")
    if not isinstance(gateway, str) or not _GATEWAY.match(gateway):
        raise FrameError("gateway: a gateway id (1 to 64 letters, digits or _.-)", request_id)
    command = frame.get("command")
    if command not in DASHBOARD_COMMANDS:
        allowed = ", ".join(sorted(DASHBOARD_COMMANDS))
        raise FrameError(
            f"command {_short(command)} is not one the dashboard sends ({allowed})", request_id
        )
    payload = frame.get("payload", {})
    if not isinstance(payload, dict):
        raise FrameError("payload: a JSON object", request_id)
    if "transaction" in payload:
        raise FrameError("payload: the relay sets the transaction", request_id)
    try:
        model = COMMANDS[command].model_validate(payload)
    except ValidationError as exc:
        raise FrameError(f"{command}: {_first_problem(exc)}", request_id) from None
    checked = model.model_dump(mode="json", exclude_none=True, exclude={"transaction"})
    return RequestFrame(request_id, gateway, command, checked)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "payload"
    return f"{where}: {error['msg']}"


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- topics -----------------------------------------------------------------------------------

TopicKind = Literal["state", "info", "event", "modem", "sim", "reply"]


@dataclass(frozen=True, slots=True)
class TopicRef:
    """Where a message came from: ``<base>/<gateway>/<...>``; ``key`` is the modem id or the
    ICCID for ``modem``/``sim``, the client id for ``reply``."""

    gateway: str
    kind: TopicKind
    key: str | None = None


def subscriptions(base: str, client_id: str) -> list[str]:
    """The topic filters a session follows: every gateway's retained state and events, and
    the session's own reply topic on every gateway."""
    return [
        f"{base}/+/bridge/state",
        f"{base}/+/bridge/info",
        f"{base}/+/bridge/event",
        f"{base}/+/modem/+",
        f"{base}/+/sim/+",
        reply_filter(base, client_id),
    ]


def reply_topic(base: str, gateway: str, client_id: str) -> str:
    """The MQTT 5 Response Topic of a request to ``gateway`` (inside the gateway's own tree,
    which is all the shipped ACL lets a gateway write)."""
    return f"{base}/{gateway}/clients/{client_id}/reply"


def reply_filter(base: str, client_id: str) -> str:
    return f"{base}/+/clients/{client_id}/reply"


def classify(base: str, topic: str) -> TopicRef | None:
    """What a topic under ``base`` is, or None for anything else."""
    prefix = base + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) < 3 or not parts[0]:
        return None
    gateway, rest = parts[0], parts[1:]
    if rest == ["bridge", "state"]:
        return TopicRef(gateway, "state")
    if rest == ["bridge", "info"]:
        return TopicRef(gateway, "info")
    if rest == ["bridge", "event"]:
        return TopicRef(gateway, "event")
    if len(rest) == 2 and rest[0] in {"modem", "sim"} and rest[1]:
        return TopicRef(gateway, "modem" if rest[0] == "modem" else "sim", rest[1])
    if len(rest) == 3 and rest[0] == "clients" and rest[2] == "reply":
        return TopicRef(gateway, "reply", rest[1])
    return None


def decode_payload(payload: bytes) -> dict[str, Any] | None:
    """A contract payload: a JSON object, or None for an empty (cleared) retained message.

    Raises ValueError for anything else (not JSON, not an object)."""
    if not payload:
        return None
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - one error type for bad payloads
    return data


# -- frames to the page ------------------------------------------------------------------------


def message_frame(ref: TopicRef, payload: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "message",
        "gateway": ref.gateway,
        "kind": ref.kind,
        "key": ref.key,
        "payload": payload,
    }


def error_frame(message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "id": request_id, "error": message}


def refused_frame(request_id: str, reason: str, message: str) -> dict[str, Any]:
    """The broker refused a request (``reason`` ``not_authorized`` …) or nobody answered
    (``no_answer``, ``no_gateway``)."""
    return {"type": "refused", "id": request_id, "reason": reason, "error": message}
