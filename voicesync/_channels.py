"""An agent's channels: the phone numbers, WebRTC, chat and WhatsApp it answers, and dev routing.

Kept on the agent and re-sent after every re-registration (`Agent._acknowledged`);
`Channels` is mixed into `Agent`. Every method may be called from any thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync.errors import ConfigurationError

if TYPE_CHECKING:
    from voicesync._uplink import Uplink

_E164_STRIP = re.compile(r"[\s\-()]")
_E164 = re.compile(r"\+\d{7,15}")


def check_phone(number: str) -> None:
    """Raise ConfigurationError unless `number` is E.164 (or a ``sip:`` URI), §3.7."""
    if number.startswith("sip:"):
        return
    normal = _E164_STRIP.sub("", number)
    if not normal.startswith("+"):
        normal = "+" + normal
    if not _E164.fullmatch(normal):
        raise ConfigurationError(
            f"invalid phone number {number!r}: use E.164, a '+' and 7-15 digits, "
            "e.g. '+13186330963'")


class Channels:
    """Adding, configuring and removing an agent's channels; mixed into `Agent`."""

    id: str
    wire_id: str
    _lock: threading.RLock
    _channels: dict[str, dict[str, Any]]
    _dev_config: dict[str, Any] | None
    _ready: threading.Event

    if TYPE_CHECKING:
        def _require_uplink(self) -> Uplink: ...
        def _send(self, frame: Mapping[str, Any]) -> bool: ...

    def add_phone(self, number: str, *, ringing: bool = False, **config: Any) -> bool:
        """Claim a phone number (E.164 or ``sip:``); ``ringing=True`` screens calls."""
        check_phone(number)
        _codec.check_config(config)
        return self._add_channel(number, _codec.channel_add(
            self.wire_id, "phone", number, config, ringing=ringing))

    def add_webrtc(self, **config: Any) -> bool:
        """Enable browser calls with per-channel config."""
        _codec.check_config(config)
        return self._add_channel("webrtc", _codec.channel_add(
            self.wire_id, "webrtc", None, config, ringing=False))

    def add_chat(self, **config: Any) -> bool:
        """Enable text chat sessions with per-channel config."""
        _codec.check_config(config)
        return self._add_channel("chat", _codec.channel_add(
            self.wire_id, "chat", None, config, ringing=False))

    def add_whatsapp(self, phone_number_id: str, *, access_token: str,
                     verify_token: str | None = None, app_secret: str | None = None,
                     phone: str | None = None, **config: Any) -> bool:
        """Answer a WhatsApp Business number (Meta's phone number id) with per-channel config.

        `access_token` is Meta's Graph API token, `verify_token` the webhook verification
        token, `app_secret` Meta's app secret (signature checks), `phone` the number itself
        (E.164, for ``wa.me`` links). Sessions arrive as calls with
        ``transport="whatsapp"`` and the agent event ``whatsapp.started(call)``. Kept per
        `phone_number_id` and re-sent whole after every re-registration.
        """
        if not phone_number_id or not access_token:
            raise ConfigurationError(
                "add_whatsapp needs Meta's phone number id and an access token")
        if phone is not None:
            check_phone(phone)
        _codec.check_config(config)
        keys = {"accessToken": access_token, "verifyToken": verify_token,
                "appSecret": app_secret, "phone": phone}
        return self._add_channel(phone_number_id, _codec.whatsapp_channel_add(
            self.wire_id, phone_number_id, keys, config))

    def remove_whatsapp(self, phone_number_id: str) -> bool:
        """Release a WhatsApp number added with `add_whatsapp`."""
        with self._lock:
            self._channels.pop(phone_number_id, None)
        return self._send(_codec.command(
            "channel.remove", agent_id=self.wire_id, type="whatsapp", ref=phone_number_id))

    def _has_whatsapp(self) -> bool:
        with self._lock:
            return any(c.get("type") == "whatsapp" for c in self._channels.values())

    def _add_channel(self, key: str, frame: dict[str, Any]) -> bool:
        with self._lock:
            self._channels[key] = frame
            if not self._ready.is_set():
                return True  # sent on acknowledgement
            return self._require_uplink().send(frame)

    def configure_channel(self, ref: str, **config: Any) -> bool:
        """Change one channel's config (``channel.configure``)."""
        _codec.check_config(config)
        frame = _codec.command("channel.configure", agent_id=self.wire_id, ref=ref)
        frame.update(_codec.encode_config(config))
        return self._send(frame)

    def route_callers(self, callers: Iterable[str]) -> bool:
        """Development routing: send these callers' calls to this process (``dev.config``).

        Re-sent after every re-registration, like the channels.
        """
        frame = {"event": "dev.config", "callers": list(callers)}
        with self._lock:
            self._dev_config = frame
            if not self._ready.is_set():
                return True
            return self._require_uplink().send(frame)

    def remove_channel(self, ref: str) -> bool:
        """Release a channel: a phone number, ``"webrtc"``, ``"chat"`` or a WhatsApp number id."""
        with self._lock:
            channel = self._channels.pop(ref, None)
        kind = channel.get("type") if channel else None
        # `ref` is required on the wire (§4.1); a channel added without one (webrtc, chat)
        # is known to the platform by its type, so the type is its ref.
        if ref in ("webrtc", "chat"):
            kind = ref
        return self._send(_codec.command(
            "channel.remove", agent_id=self.wire_id, type=kind, ref=ref))

    def _drop_channel(self, ref: str) -> None:
        with self._lock:
            self._channels.pop(ref, None)

    @property
    def channels(self) -> list[str]:
        """Channel keys: phone numbers, ``"webrtc"``, ``"chat"``, WhatsApp number ids."""
        with self._lock:
            return list(self._channels)

    # ------------------------------------------------------------------ human takeover

    def pause(self, *, session_id: str | None = None, contact: str | None = None) -> bool:
        """Human takeover: stop AI replies for a session, a contact, or (neither) all."""
        return self._send(_codec.command("session.pause", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact))

    def resume(self, *, session_id: str | None = None, contact: str | None = None) -> bool:
        """Hand a paused session (or contact, or everything) back to the AI."""
        return self._send(_codec.command("session.resume", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact))

    def send_message(self, text: str, *, session_id: str | None = None,
                     contact: str | None = None) -> bool:
        """Send a message as a human operator (``session.send``)."""
        return self._send(_codec.command("session.send", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact, text=text))
