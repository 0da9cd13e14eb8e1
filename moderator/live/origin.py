"""The websockets' origin check: a socket may be opened only by a page of this site, compared as Django's CSRF
check compares a POST's Origin — scheme, host and port against the request's own — not by host alone.

Channels' AllowedHostsOriginValidator accepts any origin whose host is in ALLOWED_HOSTS, so a page served
from another port of the same host (`http://127.0.0.1:1`) or over another scheme could open the live
sockets with the moderator's session cookie (cross-site websocket hijacking). Here the Origin must equal
``scheme://Host`` of the handshake itself (default ports implied), or be one of CSRF_TRUSTED_ORIGINS.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


def _allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host: with DEBUG and no ALLOWED_HOSTS, the local names are allowed.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def own_scheme(scope) -> str:
    """http or https: how the browser reached us. Behind a TLS proxy that is the proxy's X-Forwarded-Proto
    (uvicorn --proxy-headers puts it in the scope; Daphne does not for websockets, so the header is read
    here). Trusting the header cannot help a foreign page: a browser's websocket handshake carries no
    header the page chose, and a client that can send any header can send any Origin too."""
    forwarded = _header(scope, b"x-forwarded-proto")
    if forwarded:
        return "https" if forwarded[0].split(",")[0].strip().lower() == "https" else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def _origin_key(scheme: str, host: str, port: str | int | None) -> tuple[str, str, int] | None:
    if scheme not in DEFAULT_PORTS or not host:
        return None
    try:
        number = int(port) if port not in (None, "") else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, host.lower().strip("[]"), number


def own_origin(scope) -> tuple[str, str, int] | None:
    """(scheme, host, port) of the handshake itself; None if its Host is missing or not an allowed host."""
    hosts = _header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else []
    hosts = hosts or _header(scope, b"host")
    if len(hosts) != 1:
        return None
    host = hosts[0].split(",")[0].strip() if settings.USE_X_FORWARDED_HOST else hosts[0]
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return _origin_key(own_scheme(scope), domain, port)


def _trusted(origin: str) -> bool:
    """In CSRF_TRUSTED_ORIGINS, exactly or by a `scheme://*.domain` wildcard, as Django's CSRF check reads it."""
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    parsed = urlsplit(origin)
    return any(
        "*" in pattern
        and urlsplit(pattern).scheme == parsed.scheme
        and is_same_domain(parsed.netloc, urlsplit(pattern).netloc.lstrip("*"))
        for pattern in trusted
    )


def origin_allowed(scope) -> bool:
    origins = _header(scope, b"origin")
    if len(origins) != 1:  # none (not a browser page) or several (ambiguous): refused
        return False
    origin = origins[0]
    try:
        parsed = urlsplit(origin)
        # An origin is scheme://host[:port] and nothing else (a browser sends no path, user or query).
        bare = not (parsed.path or parsed.query or parsed.fragment or "@" in parsed.netloc)
        key = _origin_key(parsed.scheme, parsed.hostname or "", parsed.port) if bare else None
        return (key is not None and key == own_origin(scope)) or _trusted(origin)
    except ValueError:  # a port out of range, a malformed IPv6 literal
        return False


class SameOriginValidator:
    """ASGI middleware for the websocket routes: refuses (closes before accepting) a handshake whose Origin
    is not this site's, as Channels' OriginValidator refuses."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
