"""Logger names and redaction: secrets never reach a log line, a repr or an error message."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger("voicesync")

# Wire keys whose values are credentials (docs/protocol.md §2.2, §3.7).
_SECRET_FIELD = re.compile(
    r'("(?:api_key|accessToken|verifyToken|appSecret|authorization)"\s*:\s*)"[^"]*"',
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with credential fields and every given secret replaced."""
    text = _SECRET_FIELD.sub(r'\1"' + REDACTED + '"', text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def debug_enabled(log: logging.Logger) -> bool:
    """True when DEBUG records of `log` would be emitted (checked before formatting frames)."""
    return log.isEnabledFor(logging.DEBUG)
