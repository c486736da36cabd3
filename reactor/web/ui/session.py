"""The dashboard's session: a cookie proving a token was typed, and a CSRF token for actions.

The cookie holds no token: it is ``<issued>.<role>.<HMAC-SHA256(token, issued and role)>``,
``HttpOnly``, ``SameSite=Strict``, limited to ``/ui`` (``Secure`` when ``REACTOR_UI_SECURE_COOKIE``
is on or the request came over HTTPS), and valid for :data:`SESSION_S`. Changing a token ends its
sessions. Actions (cancel, retry) are POSTs that also need the ``X-CSRF-Token`` header, an HMAC
of the session the page carries in a ``<meta>`` tag, and an ``Origin`` (when the browser sends
one) naming this host: a cross-site page can neither read that token nor send the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from starlette.requests import Request

from reactor.web.api.auth import Role, Tokens

COOKIE = "reactor_session"
SESSION_S = 12 * 3600
CSRF_HEADER = "x-csrf-token"


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class Sessions:
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def _key(self, role: Role) -> str:
        return self.tokens.write if role is Role.WRITE else self.tokens.read

    def issue(self, role: Role, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{role.value}.{_mac(self._key(role), f'ui-session:{issued}:{role.value}')}"

    def role_of(self, cookie: str | None, now: float | None = None) -> Role:
        """The role a session cookie grants (``NONE`` when it is missing, forged or old)."""
        if not cookie:
            return Role.NONE
        try:
            issued_text, role_text, mac = cookie.split(".", 2)
            issued, role = int(issued_text), Role(int(role_text))
        except ValueError:
            return Role.NONE
        if role is Role.NONE or not self._key(role):
            return Role.NONE
        age = (time.time() if now is None else now) - issued
        expected = _mac(self._key(role), f"ui-session:{issued}:{role.value}")
        if not hmac.compare_digest(mac, expected) or not 0 <= age <= SESSION_S:
            return Role.NONE
        return role

    def csrf_token(self, cookie: str) -> str:
        return _mac(self.tokens.write, f"ui-csrf:{cookie}")

    def csrf_ok(self, request: Request) -> bool:
        """Whether a POST carries this session's CSRF token and comes from this origin."""
        cookie = request.cookies.get(COOKIE, "")
        sent = request.headers.get(CSRF_HEADER, "")
        return (
            bool(cookie)
            and hmac.compare_digest(sent, self.csrf_token(cookie))
            and (same_origin(request))
        )


def same_origin(request: Request) -> bool:
    """An ``Origin`` header, when present, names the host this request was sent to."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")
