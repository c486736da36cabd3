#!/usr/bin/env python3
"""Container health check: exit 0 when the reactor's ``/healthz`` answers 200, else 1.

Installed in the image as ``reactor-healthcheck`` so that neither curl nor wget is needed. It reads
the same ``REACTOR_HTTP_HOST`` / ``REACTOR_HTTP_PORT`` variables as the reactor; with the endpoints
switched off (port 0) there is nothing to ask, and the check passes.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def healthz_url(environ: dict[str, str]) -> str | None:
    """The URL of ``/healthz`` for these variables, or ``None`` when the endpoints are off."""
    port = int(environ.get("REACTOR_HTTP_PORT", "8080"))
    if port == 0:
        return None
    host = environ.get("REACTOR_HTTP_HOST", "0.0.0.0")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = healthz_url(dict(os.environ))
    if url is None:
        print("http endpoints are off (REACTOR_HTTP_PORT=0): nothing to check")
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
