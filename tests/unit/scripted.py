"""A scripted stand-in for AtChannel: the real AtCodec frames every answer, each command is
recorded, and the tests assert the exact AT sequence a driver sends."""

from __future__ import annotations

from collections.abc import Callable

from simbank.at.codec import AtCodec
from simbank.at.results import Command, Response, Urc
from simbank.errors import AtTimeout

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
PROMPT = b"\r\n> "

Answer = Callable[[Command], bytes | None]


class ScriptedChannel:
    """``answer`` maps a command to the bytes the modem would send (None: silence, an
    AtTimeout)."""

    def __init__(self, answer: Answer) -> None:
        self.name = "scripted"
        self.answer = answer
        self.sent: list[Command] = []
        self._codec = AtCodec()

    async def request(self, command: Command | str, *, check: bool = True) -> Response:
        if isinstance(command, str):
            command = Command(command)
        self.sent.append(command)
        self._codec.send(command)
        for event in self._codec.feed(self.answer(command) or b""):
            if isinstance(event, Response):
                if check:
                    event.raise_for_error()
                return event
        self._codec.abandon()
        raise AtTimeout(f"{command.text}: no answer in the script")

    def subscribe(self, prefix: str, callback: Callable[[Urc], None]) -> Callable[[], None]:
        return lambda: None

    def cancel_text_entry(self) -> None:
        """Nothing to cancel in a script."""

    @property
    def texts(self) -> list[str]:
        return [command.text for command in self.sent]
