"""A replay modem: plays one recorded transcript (tests/transcripts/*.at) on a real PTY.

The master side of a pseudo-terminal reads the host's command lines, checks each against the
transcript's next expected step and answers with the recorded bytes, optionally in 1-9 byte
chunks as real modems deliver them. A command the transcript does not expect is recorded as a
failure (naming the transcript, the step and the command) and answered ``ERROR`` at once, so
the host fails fast instead of waiting for its timeout. The file format is documented in
tests/transcripts/README.md; this module is the parser and the player.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"

_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", '"': '"', "e": "\x1b", "z": "\x1a"}
_ERROR = b"\r\nERROR\r\n"
_OK = b"\r\nOK\r\n"


class TranscriptError(ValueError):
    """A transcript file that does not follow the format."""


def unescape(text: str) -> bytes:
    r"""``\r \n \t \\ \" \e (ESC) \z (Ctrl-Z) \xHH`` → bytes; everything else is latin-1."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(text):
            raise TranscriptError(f"dangling backslash in {text!r}")
        code = text[i + 1]
        if code == "x":
            out.append(chr(int(text[i + 2 : i + 4], 16)))
            i += 4
        elif code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        else:
            raise TranscriptError(f"unknown escape \\{code} in {text!r}")
    return "".join(out).encode("latin-1")


def show(data: bytes | str) -> str:
    """Bytes as a transcript would write them (for failure messages)."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return "".join(
        {"\r": "\\r", "\n": "\\n", "\x1a": "\\z", "\x1b": "\\e"}.get(c, c)
        if c in "\r\n\x1a\x1b" or c.isprintable()
        else f"\\x{ord(c):02x}"
        for c in text
    )


@dataclass(frozen=True, slots=True)
class Expect:
    """What the host is expected to send next (one command line, or an SMS text + Ctrl-Z)."""

    kind: str  # "exact", "regex" or "any"
    patterns: tuple[str, ...]
    recorded: bool  # False: a filler the recording did not cover (declared in the file)
    line: int

    def matches(self, text: str) -> bool:
        if self.kind == "regex":
            return re.fullmatch(self.patterns[0], text) is not None
        return text in self.patterns

    def describe(self) -> str:
        if self.kind == "regex":
            return f"~/{self.patterns[0]}/"
        return " | ".join(show(p) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Answer:
    """Bytes the modem writes: the answer to the command before, or unsolicited bytes."""

    data: bytes
    recorded: bool
    unsolicited: bool
    line: int


Step = Expect | Answer


@dataclass
class Transcript:
    """One parsed transcript file."""

    path: Path
    meta: dict[str, list[str]]
    steps: list[Step]
    allow: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def one(self, key: str, default: str | None = None) -> str:
        values = self.meta.get(key)
        if not values:
            if default is None:
                raise TranscriptError(f"{self.path.name}: @{key} is required")
            return default
        return values[-1]

    def all(self, key: str) -> list[str]:
        return list(self.meta.get(key, []))

    @property
    def exchanges(self) -> int:
        """Recorded answers to a command (what the README counts as exchanges): an answer
        step right after an expected command, either of them from the recording."""
        count = 0
        for before, after in zip(self.steps, self.steps[1:], strict=False):
            if isinstance(before, Expect) and isinstance(after, Answer):
                count += after.recorded and not after.unsolicited
        return count

    @property
    def reports(self) -> int:
        """Recorded unsolicited reports (URCs pushed by the transcript)."""
        return sum(1 for s in self.steps if isinstance(s, Answer) and s.recorded and s.unsolicited)

    @property
    def chunks(self) -> tuple[int, int] | None:
        spec = self.meta.get("chunks")
        if not spec:
            return None
        low, _, high = spec[-1].partition("-")
        return int(low), int(high or low)


_META = re.compile(r"@([a-z_]+)\s*(.*)")


def parse(path: Path) -> Transcript:
    """Parse one transcript file; TranscriptError on anything malformed."""
    meta: dict[str, list[str]] = {}
    steps: list[Step] = []
    allow: dict[str, bytes] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name}:{number}"
        if line.startswith("@"):
            match = _META.fullmatch(line)
            if match is None:
                raise TranscriptError(f"{where}: bad directive {line!r}")
            key, value = match.group(1), match.group(2).strip()
            if key == "preamble":
                for command in (c.strip() for c in value.split(";")):
                    steps.append(Expect("exact", (command,), recorded=False, line=number))
                    steps.append(Answer(_OK, recorded=False, unsolicited=False, line=number))
            elif key == "allow":
                command, sep, answer = value.partition("=>")
                if not sep:
                    raise TranscriptError(f"{where}: @allow needs 'COMMAND => ANSWER'")
                allow[command.strip()] = unescape(answer.strip())
            else:
                meta.setdefault(key, []).append(value)
            continue
        recorded = not line.startswith("+")
        body = line if recorded else line[1:]
        if body.startswith(">"):
            head, _, rest = body.partition(" ")
            rest = rest.strip()
            if head == ">":
                steps.append(Expect("exact", (rest,), recorded, number))
            elif head == ">~":
                re.compile(rest)
                steps.append(Expect("regex", (rest,), recorded, number))
            elif head == ">|":
                options = tuple(o.strip() for o in rest.split(" | "))
                steps.append(Expect("any", options, recorded, number))
            else:
                raise TranscriptError(f"{where}: unknown host step {head!r}")
            # Payload lines (an SMS text) carry their Ctrl-Z as \z; unescape the patterns.
            last = steps[-1]
            assert isinstance(last, Expect)
            if last.kind != "regex":
                patterns = tuple(unescape(p).decode("latin-1") for p in last.patterns)
                steps[-1] = Expect(last.kind, patterns, last.recorded, last.line)
        elif body.startswith("<"):
            head, _, rest = body.partition(" ")
            if head not in ("<", "<!"):
                raise TranscriptError(f"{where}: unknown modem step {head!r}")
            data = unescape(rest)
            unsolicited = head == "<!"
            if not steps and not unsolicited:
                raise TranscriptError(f"{where}: an answer before any command")
            steps.append(Answer(data, recorded, unsolicited, number))
        else:
            raise TranscriptError(f"{where}: cannot read {line!r}")
    transcript = Transcript(path, meta, steps, allow)
    for key in ("source", "vendor", "device", "origin", "op"):
        transcript.one(key)
    return transcript


def discover(directory: Path = TRANSCRIPTS) -> list[Path]:
    return sorted(directory.glob("*.at"))


class ReplayModem:
    """The master side of a PTY playing one transcript. ``path`` is the slave to open."""

    def __init__(self, transcript: Transcript, *, seed: int | None = None) -> None:
        self.transcript = transcript
        self.failures: list[str] = []
        self.received: list[str] = []
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._position = 0
        self._buffer = bytearray()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._random = random.Random(seed if seed is not None else transcript.name)
        self._task: asyncio.Task[None] | None = None
        self._writes: asyncio.Lock = asyncio.Lock()
        self.finished = asyncio.Event()
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Read the host from now on; play steps once :meth:`begin` is called."""
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    def begin(self) -> None:
        """Start playing (call once the host has opened the port: an open flushes input)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._play(), name=f"replay-{self.transcript.name}"
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)

    # -- state ---------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Every step has been played."""
        return self._position >= len(self.transcript.steps)

    def step_label(self, index: int | None = None) -> str:
        index = self._position if index is None else index
        if index >= len(self.transcript.steps):
            return f"{self.transcript.path.name}: after the last step"
        step = self.transcript.steps[index]
        return f"{self.transcript.path.name}:{step.line} (step {index + 1})"

    def remaining(self) -> list[str]:
        return [
            f"line {step.line}: {'host ' + step.describe() if isinstance(step, Expect) else 'modem'}"
            for step in self.transcript.steps[self._position :]
        ]

    # -- the player ----------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EAGAIN, or EIO while no slave is open
            return
        self._buffer += data
        while True:
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\x1a")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            chunk = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            text = chunk.rstrip(b"\r").decode("latin-1").lstrip("\n")
            if text:
                self.received.append(text)
                self._lines.put_nowait(text)

    async def _play(self) -> None:
        steps = self.transcript.steps
        while True:
            while self._position < len(steps):
                step = steps[self._position]
                if isinstance(step, Answer):
                    await self._write(step.data)
                    self._position += 1
                    if self._position < len(steps) and isinstance(steps[self._position], Answer):
                        # Consecutive answer steps are separate reads on a real port.
                        await asyncio.sleep(0.001)
                    continue
                text = await self._lines.get()
                if step.matches(text):
                    self._position += 1
                    continue
                allowed = self.transcript.allow.get(text)
                if allowed is not None:
                    await self._write(allowed)
                    continue
                self.failures.append(
                    f"{self.step_label()}: expected host to send {step.describe()}, "
                    f"it sent {show(text)!r}"
                )
                await self._write(_ERROR)
            self.finished.set()
            text = await self._lines.get()
            allowed = self.transcript.allow.get(text)
            if allowed is not None:
                await self._write(allowed)
                continue
            self.failures.append(
                f"{self.step_label()}: the host sent {show(text)!r} after the transcript ended"
            )
            await self._write(_ERROR)

    async def _write(self, data: bytes) -> None:
        async with self._writes:
            for piece in self._pieces(data):
                if self._closed:
                    return
                os.write(self._master, piece)
                if len(piece) < len(data):
                    # Let the host read each piece on its own, as a modem's USB frames arrive.
                    await asyncio.sleep(0.001)

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        bounds = self.transcript.chunks
        if bounds is None:
            yield data
            return
        low, high = bounds
        start = 0
        while start < len(data):
            size = self._random.randint(low, high)
            yield data[start : start + size]
            start += size

    async def wait_finished(self) -> None:
        """Until every step has been played (or a failure was recorded)."""
        while not self.finished.is_set() and not self.failures:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await self.finished.wait()
