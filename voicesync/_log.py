"""Logger names and redaction: secrets never reach a log line, a repr or an error message.

`redact()` is the one function that removes the API key from text. Everything that
can carry wire text to a person (inbound frames before they are decoded, close
reasons, server error messages, exception texts, log records) goes through it.
"""

from __future__ import annotations

import base64
import bisect
import functools
import logging
import re
from collections.abc import Iterable

logger = logging.getLogger("voicesync")

# Wire keys whose values are credentials (docs/protocol.md §2.2, §3.7).
_SECRET_FIELD = re.compile(
    r'("(?:api_key|accessToken|verifyToken|appSecret|authorization)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
REDACTED = "[redacted]"
#: Shorter keys are test or local placeholders; matching them would mangle ordinary text.
MIN_SECRET = 8
#: A run of this many consecutive characters of the key is redacted on its own, so a key
#: split across fields (or cut short) is still caught when each piece is this long.
FRAGMENT = 10


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with credential fields and every form of each secret replaced.

    A secret is found plain, inside a longer token, as any run of `FRAGMENT` or more
    of its characters, with any of its characters written as a JSON/unicode escape
    (``\\u0070``, also with the backslash itself escaped) or percent-encoded (``%70``),
    in base64 (standard or URL-safe, at any alignment inside a longer base64 string)
    and in hex. Secrets shorter than `MIN_SECRET` are left alone.
    """
    # Every inbound frame comes through here: cheap `in` checks first, the regex only
    # when one of the names is there (the common frame holds none).
    lowered = text.lower()
    if ("api_key" in lowered or "accesstoken" in lowered or "verifytoken" in lowered
            or "appsecret" in lowered or "authorization" in lowered):
        text = _SECRET_FIELD.sub(r'\1"' + REDACTED + '"', text)
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET:
            text = _finder(secret).sub(text)
    return text


def redact_error(error: BaseException, *secrets: str | None) -> None:
    """Redact an exception in place: its args, its string attributes, and its causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(redact(a, *secrets) if isinstance(a, str) else a
                             for a in current.args)
        for name, value in list(vars(current).items()):
            if isinstance(value, str):
                setattr(current, name, redact(value, *secrets))
        current = current.__cause__ or current.__context__


class _Finder:
    """The search for one secret, built once per key (then cached by `_finder`).

    Escapes are decoded into a view of the text that remembers where each of its
    characters came from; runs of the key are found in the view with one regex of
    plain fragments, and mapped back. Linear in the text, so a hostile 1 MiB frame
    costs milliseconds.
    """

    def __init__(self, secret: str) -> None:
        size = min(FRAGMENT, len(secret))
        self._secret = secret
        self._grams: dict[str, int] = {}  # each run of `size` characters -> its offset
        for i in range(len(secret) - size + 1):
            self._grams.setdefault(secret[i:i + size], i)
        self._runs = re.compile("|".join(map(re.escape, self._grams)))
        self._literals = tuple(dict.fromkeys(_binary_forms(secret.encode("utf-8"))))
        # Cheap necessary conditions, checked first: every run of `size` characters
        # contains one of these aligned blocks.
        step = max(1, size // 2)
        blocks = [secret[i:i + step] for i in range(0, len(secret) - step + 1, step)]
        self._blocks = tuple(blocks)
        # One search that fails fast on the common frame, which holds no part of the key
        # in any form: an escape, a block of it, or the start of one of its encodings.
        self._hints = re.compile("|".join(map(re.escape, dict.fromkeys(
            [*_ESCAPE_MARKS, *blocks, *(literal[:step] for literal in self._literals)]))))

    def sub(self, text: str) -> str:
        if self._hints.search(text) is None:
            return text
        spans: list[tuple[int, int]] = []
        if any(mark in text for mark in _ESCAPE_MARKS) and self._found(
                _ESCAPE.sub(_unescape, text)):
            view = _View(text)  # built only when the decoded text holds part of the key
            spans += (view.span(start, stop) for start, stop in self._spans(view.text))
        elif self._found(text):
            spans += self._spans(text)
        for literal in self._literals:
            start = text.find(literal)
            while start >= 0:
                spans.append((start, start + len(literal)))
                start = text.find(literal, start + 1)
        return _replace(text, spans) if spans else text

    def _found(self, text: str) -> bool:
        return any(block in text for block in self._blocks)

    def _spans(self, text: str) -> Iterable[tuple[int, int]]:
        """Maximal runs of the secret in `text`: a fragment, extended while it goes on."""
        secret = self._secret
        match = self._runs.search(text)
        while match is not None:
            start, stop = match.span()
            offset = self._grams[match.group()] + stop - start
            while (stop < len(text) and offset < len(secret)
                   and text[stop] == secret[offset]):
                stop += 1
                offset += 1
            yield start, stop
            match = self._runs.search(text, stop)


_ESCAPE_MARKS = ("\\u", "%", "\\/")  # what every match of _ESCAPE starts with
_ESCAPE = re.compile(r"\\{1,2}u00([0-7][0-9a-fA-F])|%([0-7][0-9a-fA-F])|\\(/)")


def _unescape(match: re.Match[str]) -> str:
    code, percent, slash = match.groups()
    return str(slash or chr(int(code or percent, 16)))


class _View:
    """`text` with its JSON, unicode and percent escapes of ASCII decoded."""

    def __init__(self, text: str) -> None:
        chunks: list[str] = []
        self._length = 0
        self._starts: list[int] = []  # view index where each segment starts
        self._origins: list[int] = []  # ... and where it starts in `text`
        self._widths: list[int] = []  # characters of `text` per view character
        position = 0
        for match in _ESCAPE.finditer(text):
            if match.start() > position:
                self._segment(chunks, text[position:match.start()], position, 1)
            self._segment(chunks, _unescape(match), match.start(), match.end() - match.start())
            position = match.end()
        if position < len(text):
            self._segment(chunks, text[position:], position, 1)
        self.text = "".join(chunks)

    def _segment(self, chunks: list[str], piece: str, origin: int, width: int) -> None:
        self._starts.append(self._length)
        self._origins.append(origin)
        self._widths.append(width)
        chunks.append(piece)
        self._length += len(piece)

    def span(self, start: int, stop: int) -> tuple[int, int]:
        """The span of `text` that view[start:stop] came from."""
        first = bisect.bisect_right(self._starts, start) - 1
        last = bisect.bisect_right(self._starts, stop - 1) - 1
        return (self._origins[first] + start - self._starts[first],
                self._origins[last] + stop - 1 - self._starts[last] + self._widths[last])


@functools.lru_cache(maxsize=16)
def _finder(secret: str) -> _Finder:
    return _Finder(secret)


def _binary_forms(raw: bytes) -> Iterable[str]:
    """The secret in base64 at each of the three alignments, and in hex."""
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # Drop the characters that also encode the neighbouring bytes.
        core = encoded[(offset * 8 + 5) // 6:(offset + len(raw)) * 8 // 6]
        yield core
        yield core.replace("+", "-").replace("/", "_")
    yield raw.hex()
    yield raw.hex().upper()


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    out: list[str] = []
    position = 0
    for start, stop in merged:
        out += (text[position:start], REDACTED)
        position = stop
    out.append(text[position:])
    return "".join(out)


def debug_enabled(log: logging.Logger) -> bool:
    """True when DEBUG records of `log` would be emitted (checked before formatting frames)."""
    return log.isEnabledFor(logging.DEBUG)
