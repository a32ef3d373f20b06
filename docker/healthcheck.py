"""Healthcheck of the web container: does gunicorn answer a request through Django?

Any answer below 500 counts as healthy: the login page answers 200, and a
400 (a Host not in DJANGO_ALLOWED_HOSTS) still shows that gunicorn and Django
are serving. No answer, or a 5xx, is unhealthy (exit status 1).
"""

from __future__ import annotations

import http.client
import os
import sys

PATH = "/accounts/login/"


def main() -> int:
    port = int(os.environ.get("PORT") or 8000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", PATH, headers={"Host": "localhost"})
        status = conn.getresponse().status
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if status >= 500:
        print(f"unhealthy: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
