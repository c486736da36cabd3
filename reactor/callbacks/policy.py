"""Callbacks, decided without I/O: where one may go, how it is signed, when it is tried again.

**Where.** Only ``http`` and ``https`` URLs with a host. With ``REACTOR_CALLBACK_ALLOWED_HOSTS``
set (comma separated: ``hooks.example.com``, ``*.example.com`` for any subdomain, an IP
address as written), the host must match one; empty allows every host. A URL that is refused is
never requested: its delivery ends ``refused``, with the reason.

**Signed.** Each request carries

- ``X-Reactor-Delivery``: the delivery's id (the same on every attempt; new for each run), so
  the receiver can drop duplicates;
- ``X-Reactor-Kind``: ``job`` or ``workflow``;
- ``X-Reactor-Timestamp``: Unix seconds when the attempt was made;
- ``X-Reactor-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` with
  ``REACTOR_CALLBACK_SECRET`` as the key (absent when no secret is set).

A receiver recomputes the HMAC over the timestamp header, a dot and the raw body, compares it in
constant time, and refuses timestamps too far from its clock (replays).

**Again.** Any answer other than 2xx (redirects are not followed) and any network error is a
failed attempt; the next comes after ``REACTOR_CALLBACK_BACKOFF_S`` doubled per attempt, at most
``REACTOR_CALLBACK_MAX_BACKOFF_S``, until ``REACTOR_CALLBACK_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

DELIVERY_HEADER = "X-Reactor-Delivery"
KIND_HEADER = "X-Reactor-Kind"
TIMESTAMP_HEADER = "X-Reactor-Timestamp"
SIGNATURE_HEADER = "X-Reactor-Signature"


@dataclass(frozen=True)
class Policy:
    """The callback settings, resolved once."""

    secret: bytes = b""
    allowed_hosts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_attempts: int = 10
    backoff_s: float = 1.0
    max_backoff_s: float = 600.0

    @classmethod
    def of(
        cls,
        *,
        secret: str,
        allowed_hosts: str,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float,
        max_backoff_s: float,
    ) -> Policy:
        hosts = tuple(h.strip().lower() for h in allowed_hosts.split(",") if h.strip())
        return cls(secret.encode(), hosts, timeout_s, max_attempts, backoff_s, max_backoff_s)

    def refusal(self, url: object) -> str | None:
        """Why ``url`` may not be requested, or ``None``."""
        problem = url_problem(url)
        if problem is not None:
            return problem
        host = (urlsplit(str(url)).hostname or "").lower()
        if not host_allowed(host, self.allowed_hosts):
            return f"host {host!r} is not in REACTOR_CALLBACK_ALLOWED_HOSTS"
        return None

    def headers(self, delivery_id: str, kind: str, timestamp: int, body: bytes) -> dict[str, str]:
        found = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id,
            KIND_HEADER: kind,
            TIMESTAMP_HEADER: str(timestamp),
        }
        if self.secret:
            found[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
        return found

    def backoff(self, attempts: int) -> float:
        """The pause after the ``attempts``-th failed attempt."""
        return float(min(self.max_backoff_s, self.backoff_s * 2.0 ** max(0, attempts - 1)))


def url_problem(url: object) -> str | None:
    """Why ``url`` is not an http(s) URL with a host, or ``None``."""
    if not isinstance(url, str) or not url:
        return "callback_url must be a non-empty string"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"callback_url {url!r} is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"callback_url {url!r}: only http and https URLs are allowed"
    if not parts.hostname:
        return f"callback_url {url!r} has no host"
    return None


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` matches one of ``allowed`` (none given: every host)."""
    patterns = list(allowed)
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``<timestamp>.<body>``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    try:
        expected = signature(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, header)
