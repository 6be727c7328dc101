"""Offline translation with Apertium, Debian's rule-based machine translation.

Apertium is GPL software, so Parley (Apache-2.0) runs it as separate programs and talks to
them over pipes; nothing of it is imported. For each installed language pair ("mode", a
shell pipeline in /usr/share/apertium/modes/<mode>.mode) one pipeline is kept running in
null-flush mode (`-z` on every stage): a request is written ending in a NUL and the reply
is read up to the NUL, so the transducers load once, not per call (about 1 s, then a few
ms a sentence). Nothing is read or started at import: only on the first translation.

Pairs Debian lacks from English (fr, it, pt) go through Spanish, as eng→spa→fra.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from tools.languages import LANGUAGES

MODES_DIR = Path("/usr/share/apertium/modes")
# The names Apertium's mode files use for an ISO 639-1 code (older pairs use 2 letters).
_APERTIUM_CODES: dict[str, tuple[str, ...]] = {
    "en": ("eng", "en"), "es": ("spa", "es"), "fr": ("fra", "fr"), "it": ("ita", "it"),
    "pt": ("por", "pt"), "ca": ("cat", "ca"), "gl": ("glg", "gl"), "eo": ("epo", "eo"),
    "eu": ("eus", "eu"), "ro": ("ron", "ro"),
}
# Debian's packages: the engine and the pairs English→es/fr/it/pt needs (.ci/system-tools).
APT_PACKAGES = ("apertium", "apertium-eng-spa", "apertium-fr-es", "apertium-es-pt",
                "apertium-spa-ita")
PIVOT = "es"  # most Debian pairs have Spanish on one side
# Text Apertium must not translate, carried through as a "superblank" (formatting Apertium
# copies to its output): inline code, a link's target, a bare URL.
_PROTECTED = re.compile(r"`[^`\n]+`|\]\([^)\s]*\)|https?://[^\s)\]]+")
_RESERVED = re.compile(r"([\^$\[\]{}/\\@<>])")  # escaped with '\' in Apertium's stream
_END = b"[][\n]"  # closes a request, as `apertium-destxt -n` closes a text
# A Markdown line's own marks (indent, list marker, heading, quote) stay outside Apertium.
_LINE = re.compile(r"^(\s*(?:[-*+]\s+|\d+[.)]\s+|#{1,6}\s+|>\s*)*)(.*?)(\s*)$")


class ApertiumError(RuntimeError):
    """A pipeline failed or timed out; the caller may fall back to another engine."""


def installed_modes(modes_dir: Path = MODES_DIR) -> set[str]:
    """Mode names such as 'eng-spa' and 'es-fr'; empty when Apertium is not installed."""
    try:
        return {path.stem for path in modes_dir.glob("*.mode")}
    except OSError:
        return set()


def _mode(source: str, target: str, modes: set[str]) -> str | None:
    for s in _APERTIUM_CODES.get(source, ()):
        for t in _APERTIUM_CODES.get(target, ()):
            if f"{s}-{t}" in modes:
                return f"{s}-{t}"
    return None


def route(source: str, target: str, modes: set[str]) -> list[str] | None:
    """The modes translating source→target (ISO codes): direct, else through Spanish."""
    if source == target:
        return None
    direct = _mode(source, target, modes)
    if direct:
        return [direct]
    first, second = _mode(source, PIVOT, modes), _mode(PIVOT, target, modes)
    return [first, second] if first and second else None


def pipeline_command(mode_file: Path) -> str:
    """The mode's shell pipeline with every stage in null-flush mode and no '*' marks."""
    command = mode_file.read_text().strip()
    command = command.replace("$1", "-n").replace("$2", "")  # -n: unknown words unmarked
    stages = [stage.strip() for stage in command.split("|")]
    return " | ".join(re.sub(r"^(\S+)", r"\1 -z", stage) for stage in stages)


class Pipeline:
    """One warm Apertium pipeline: one request at a time (a lock), restarted when dead."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        # Its own process group, so a timeout can kill every stage, not just the shell.
        return subprocess.Popen(["/bin/sh", "-c", self.command], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        proc.wait()

    def _exchange(self, proc: subprocess.Popen[bytes], stream: bytes) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(stream + b"\0")
        proc.stdin.flush()
        fd, reply, deadline = proc.stdout.fileno(), bytearray(), time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no reply within {self.timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("the pipeline exited")
            reply += chunk
            if b"\0" in chunk:
                # One request at a time, so nothing follows the NUL.
                return bytes(reply[: reply.index(b"\0")])

    def __call__(self, stream: bytes) -> bytes:
        with self._lock:
            for attempt in (1, 2):  # a dead pipeline is restarted once, for this request
                if self._proc is None or self._proc.poll() is not None:
                    self._kill()
                    self._proc = self._start()
                try:
                    return self._exchange(self._proc, stream)
                except (BrokenPipeError, EOFError, OSError) as exc:
                    self._kill()
                    if attempt == 2:
                        raise ApertiumError(f"apertium failed: {exc}") from exc
                except TimeoutError as exc:
                    self._kill()  # its state is unknown: the next request starts afresh
                    raise ApertiumError(f"apertium: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._kill()


def escape(text: str) -> bytes:
    """One line of plain text as Apertium's stream, protected spans as superblanks."""
    out, at = [], 0
    for match in _PROTECTED.finditer(text):
        out.append(_RESERVED.sub(r"\\\1", text[at:match.start()]))
        out.append("[" + re.sub(r"([\]\[\\])", r"\\\1", match.group()) + "]")
        at = match.end()
    out.append(_RESERVED.sub(r"\\\1", text[at:]))
    return "".join(out).encode() + _END


def unescape(stream: bytes) -> str:
    """Apertium's stream back to text: superblanks unwrapped, escapes removed."""
    text = stream.decode(errors="replace")
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char in "[]":  # a superblank's brackets (its content is copied as it is)
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out).strip()


class ApertiumEngine:
    """Translates between the installed pairs, one warm pipeline per mode, shared."""

    name = "Apertium"

    def __init__(self, modes_dir: Path = MODES_DIR, timeout: float = 20.0) -> None:
        self.modes_dir = modes_dir
        self.timeout = timeout
        self._modes: set[str] | None = None
        self._pipelines: dict[str, Pipeline] = {}
        self._lock = threading.Lock()

    @property
    def modes(self) -> set[str]:
        if self._modes is None:  # read on first use, never at import
            self._modes = installed_modes(self.modes_dir)
        return self._modes

    def supports(self, source: str, target: str) -> bool:
        return route(source, target, self.modes) is not None

    def targets(self, source: str = "en") -> list[str]:
        """The languages (ISO codes) reachable from `source`, e.g. ['es', 'fr', 'it', 'pt']."""
        return sorted(code for code in _APERTIUM_CODES if self.supports(source, code))

    def _pipeline(self, mode: str) -> Pipeline:
        with self._lock:
            if mode not in self._pipelines:
                command = pipeline_command(self.modes_dir / f"{mode}.mode")
                self._pipelines[mode] = Pipeline(command, self.timeout)
            return self._pipelines[mode]

    def translate_line(self, line: str, modes: Iterable[str]) -> str:
        marks, body, tail = _LINE.match(line).groups()  # type: ignore[union-attr]
        if not re.search(r"\w", body):
            return line
        stream = escape(body)
        for mode in modes:
            stream = self._pipeline(mode)(stream)
        return marks + unescape(stream) + tail

    def translate(self, text: str, source: str, target: str) -> str:
        """Blocking (run it in a thread): text without fenced code, line by line, so
        Markdown's line structure stays as it was."""
        modes = route(source, target, self.modes)
        if modes is None:
            raise ApertiumError(f"no Apertium pair for {source}→{target}")
        return "\n".join(self.translate_line(line, modes) for line in text.split("\n"))

    def close(self) -> None:
        with self._lock:
            pipelines, self._pipelines = list(self._pipelines.values()), {}
        for pipeline in pipelines:
            pipeline.close()


def translation_status(chosen: str, setting: str, engine: ApertiumEngine | None = None
                       ) -> str:
    """One line for the startup log and `parley models`: which engine translates what
    (`chosen`, from the PARLEY_TRANSLATION `setting`)."""
    if chosen != "apertium":
        return f"translation: the chat model (PARLEY_TRANSLATION={setting})"
    targets = (engine or ApertiumEngine()).targets("en")
    if not targets:
        return ("translation: the chat model; Apertium is not installed (`sudo apt-get "
                f"install -y {' '.join(APT_PACKAGES)}` adds offline translation)")
    names = ", ".join(LANGUAGES[code] for code in targets)
    return (f"translation: Apertium, offline, for English to and from {names}; other "
            f"languages by the chat model (PARLEY_TRANSLATION={setting})")


@functools.cache
def shared_engine() -> ApertiumEngine:
    """The process's one engine, so every agent's translator shares the warm pipelines."""
    engine = ApertiumEngine()
    atexit.register(engine.close)
    return engine
