"""Bearer tokens for ``/api``: a read-write token, and optionally a read-only one.

Tokens are compared in constant time (``hmac.compare_digest`` over SHA-256 digests, so neither
the content nor the length of a guess shows in the time taken), and a request is checked against
every configured token whatever the first comparison said. Only the ``Authorization`` header is
read: a token in a query string would end up in access logs, proxies and browser history.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reactor.web.api.errors import ApiError, known_query_only


class Role(enum.IntEnum):
    """What a token may do; a higher role includes the lower ones."""

    NONE = 0
    READ = 1
    WRITE = 2


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Tokens:
    """The configured tokens (``REACTOR_API_TOKEN``, ``REACTOR_API_READ_TOKEN``)."""

    write: str
    read: str = ""

    def role_of(self, presented: str) -> Role:
        """The role ``presented`` grants, in constant time."""
        guess = _digest(presented)
        is_write = hmac.compare_digest(guess, _digest(self.write)) and bool(self.write)
        is_read = hmac.compare_digest(guess, _digest(self.read)) and bool(self.read)
        if is_write:
            return Role.WRITE
        return Role.READ if is_read else Role.NONE


_bearer = HTTPBearer(auto_error=False, description="REACTOR_API_TOKEN (or the read-only token)")
_BEARER = Depends(_bearer)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


class Auth:
    """FastAPI dependencies: :attr:`reader` for GET routes, :attr:`writer` for the others."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.reader = Depends(self._needs(Role.READ))
        self.writer = Depends(self._needs(Role.WRITE))

    def _needs(self, needed: Role) -> Callable[..., Awaitable[Role]]:
        async def check(
            request: Request, credentials: HTTPAuthorizationCredentials | None = _BEARER
        ) -> Role:
            if credentials is None:
                raise unauthorized("send Authorization: Bearer <REACTOR_API_TOKEN>")
            role = self.tokens.role_of(credentials.credentials)
            if role is Role.NONE:
                raise unauthorized("the bearer token is not valid")
            if role < needed:
                raise ApiError(403, "forbidden", "the read-only token cannot change jobs")
            known_query_only(request)  # after the token: a stranger learns nothing of the routes
            return role

        return check
