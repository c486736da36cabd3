"""Callbacks decided without I/O: where they may go, the signature, the back-off."""

from __future__ import annotations

import pytest

from reactor.callbacks.policy import Policy, signature, verify


def policy(hosts: str = "", secret: str = "k") -> Policy:
    return Policy.of(
        secret=secret,
        allowed_hosts=hosts,
        timeout_s=5,
        max_attempts=4,
        backoff_s=1,
        max_backoff_s=5,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "has no host"),
        ("", "non-empty string"),
        (42, "non-empty string"),
    ],
)
def test_only_http_urls_with_a_host_may_be_called(url: object, reason: str) -> None:
    """Other schemes, a missing host and non-strings are refused with the reason."""
    found = policy().refusal(url)
    assert found is not None
    assert reason in found


def test_allowed_hosts_restrict_where_callbacks_go() -> None:
    """Exact hosts and *.suffix wildcards match; everything else is refused; none set: all."""
    only = policy("hooks.example.com, *.internal.example")
    assert only.refusal("https://hooks.example.com/a") is None
    assert only.refusal("http://a.internal.example:8080/x") is None
    assert only.refusal("http://internal.example/x") is not None
    assert only.refusal("http://evil.com/?hooks.example.com") is not None
    assert policy().refusal("http://anything.example/x") is None


def test_the_signature_covers_timestamp_and_body_and_verifies() -> None:
    """HMAC-SHA256 over "<timestamp>.<body>": the right key, timestamp and body verify."""
    header = signature(b"k", 1700000000, b'{"a": 1}')
    assert header.startswith("sha256=")
    assert verify(b"k", "1700000000", b'{"a": 1}', header)
    assert not verify(b"k", "1700000001", b'{"a": 1}', header)
    assert not verify(b"k", "1700000000", b'{"a": 2}', header)
    assert not verify(b"x", "1700000000", b'{"a": 1}', header)
    headers = policy().headers("j:1", "job", 1700000000, b"{}")
    assert headers["X-Reactor-Signature"] == signature(b"k", 1700000000, b"{}")
    assert "X-Reactor-Signature" not in policy(secret="").headers("j:1", "job", 1, b"{}")


def test_the_backoff_doubles_up_to_its_bound() -> None:
    """1, 2, 4, then the 5 s bound."""
    assert [policy().backoff(n) for n in (1, 2, 3, 4, 9)] == [1, 2, 4, 5, 5]
