"""`make run`'s supervisor: honcho, with time for the worker's warm shutdown.

honcho sends SIGTERM to every process of the Procfile on Ctrl-C (or when one
exits) and SIGKILL to what is still running after `honcho.manager.KILL_WAIT`
seconds, 5 in honcho 2.0, which has no option for it. A Celery worker on the
filesystem broker needs about 7 s to stop even when idle (its blocking pool
and timer each wait out a 1 s poll), so at 5 s every Ctrl-C ended in a
SIGKILL. BIOFM_STOP_WAIT (seconds, default 15) sets the wait.

    python -m biofm_site.procfile -f Procfile start
"""

from __future__ import annotations

import os
import sys

import honcho.manager
from honcho.command import main

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = int(os.environ.get("BIOFM_STOP_WAIT", "15"))
    sys.exit(main())
