"""Reading the URLs and host names users pass to toad, with errors that say what to fix."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import InvalidAddress, InvalidURL

__all__ = ["WebSocketURL", "parse_host", "parse_port", "parse_url"]

# The seed's examples use http:// URLs; they mean ws:// (and https:// means wss://).
_SCHEMES = {"ws": False, "http": False, "wss": True, "https": True}


class WebSocketURL(NamedTuple):
    """A URL toad can connect to."""

    secure: bool
    host: str
    port: int
    path: str  # the resource name: path and query (RFC 6455 section 3)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.secure else 'ws'}://{host}:{self.port}{self.path}"


def parse_url(url: object) -> WebSocketURL:
    """Read a ``ws://``, ``wss://``, ``http://`` or ``https://`` URL (RFC 6455 section 3)."""
    if not isinstance(url, str):
        raise InvalidURL(f"a URL must be a string like 'ws://localhost:8001', not {type(url).__name__}")
    text = url.strip()
    if "://" not in text:
        raise InvalidURL(f"{url!r} has no scheme: write it like 'ws://{text or 'localhost:8001'}'")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r} is not a valid URL ({exc}): write it like 'ws://localhost:8001'") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidURL(f"{url!r} has the scheme {scheme!r}: use ws:// (or wss:// for TLS)")
    if parts.fragment or "#" in text:
        # Section 3: fragment identifiers MUST NOT be used in WebSocket URIs.
        raise InvalidURL(f"{url!r} has a #fragment, which WebSocket URLs cannot have: remove it")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"{url!r} has no host: write it like 'ws://localhost:8001'")
    secure = _SCHEMES[scheme]
    if port is None:
        port = 443 if secure else 80
    if port == 0:
        raise InvalidURL(f"{url!r} has port 0: use the port the server listens on")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebSocketURL(secure, host, port, path)


def parse_host(host: object) -> str:
    """The host a server binds to; accepts the seed's ``"http://localhost"`` form.

    ``""`` and ``"0.0.0.0"`` mean every interface.
    """
    if host is None:
        return ""
    if not isinstance(host, str):
        raise InvalidAddress(f"a host must be a string like 'localhost' or '0.0.0.0', not {type(host).__name__}")
    text = host.strip()
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in _SCHEMES:
            raise InvalidAddress(f"host {host!r} has the scheme {scheme!r}: write just the host, like 'localhost'")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise InvalidAddress(f"host {host!r} is not valid ({exc}): write just the host, like 'localhost'") from None
        if port is not None or parts.path not in ("", "/"):
            raise InvalidAddress(f"host {host!r} has a port or a path: pass the host alone and the port as port=...")
        text = parts.hostname or ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if any(c in text for c in "/ ?#"):
        raise InvalidAddress(f"host {host!r} is not a host name: write it like 'localhost' or '0.0.0.0'")
    return text


def parse_port(port: object) -> int:
    """A port number 0-65535 (0 asks the system for a free port)."""
    if isinstance(port, bool) or not isinstance(port, int):
        # isdecimal, not isdigit: int() refuses digits like "²" that isdigit accepts;
        # and int() the stripped text, as str.strip() removes more than int() does ("\x1f").
        if isinstance(port, str) and port.strip().isdecimal():
            port = int(port.strip())
        else:
            raise InvalidAddress(f"port must be a whole number like 8001, not {port!r}")
    if not 0 <= port <= 65535:
        raise InvalidAddress(f"port {port} is out of range: use a number from 1024 to 65535 (or 0 for any free port)")
    return port
