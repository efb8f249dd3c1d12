"""Run the wizard in this process with a crash point installed by the test, not by the product:

    python tests/crashhook.py N ARGS...

counts the moments a file write becomes visible — creating a temp file (`.wizard-tmp-…`) and renaming it
over its target — and at the Nth one prints `crashhook: reached N` on stderr and kills this process with
SIGKILL (nothing is flushed, nothing cleaned up: a power cut as far as the tree can tell). When the run
has fewer points it finishes normally, prints `crashhook: points COUNT`, and exits with the wizard's
exit code. tests/forkserver.py installs the same hook in its forked children.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

TEMP_PREFIX = ".wizard-tmp-"


_SEEN = [0]


def seen() -> int:
    """How many crash points this process has passed."""
    return _SEEN[0]


def install(point: int, at_exit: bool = True) -> None:
    real_open, real_replace = os.open, os.replace
    seen = _SEEN

    def reached() -> None:
        seen[0] += 1
        if seen[0] == point:
            sys.stderr.write(f"crashhook: reached {point}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked_open(path, flags, *args, **kwargs):
        if Path(str(path)).name.startswith(TEMP_PREFIX) and flags & os.O_CREAT:
            reached()
        return real_open(path, flags, *args, **kwargs)

    def hooked_replace(src, dst, *args, **kwargs):
        if Path(str(src)).name.startswith(TEMP_PREFIX):
            reached()
        return real_replace(src, dst, *args, **kwargs)

    os.open = hooked_open
    os.replace = hooked_replace
    if at_exit:
        import atexit

        atexit.register(lambda: sys.stderr.write(f"crashhook: points {seen[0]}\n"))


def main() -> int:
    point = int(sys.argv[1])
    install(point)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from wizard.cli import main as wizard_main

    return wizard_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
