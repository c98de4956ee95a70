"""File work done as a user, never as root: a forked child drops to the user's uid:gid (no
supplementary groups) before it opens anything, so the kernel judges every step with that
user's own rights and root never follows a path the user controls. `mountdirs` makes missing
mount directories this way and `notify` writes the lifecycle's messages.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_MAX_ANSWER = 600  # bytes the child may hand back: one line or two


def run_as(uid: int, gid: int, work: Callable[[], str]) -> tuple[bool, str]:
    """Run `work` in a child as uid:gid: (True, what it returned), or (False, why not: an
    OSError as one line, '' for anything else)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls, and always _exit (the parent may run threads)
        os.close(reader)
        code = 0
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(writer, work().encode()[:_MAX_ANSWER])
        except OSError as exc:
            code = 1
            where = f" at {exc.filename}" if exc.filename else ""
            os.write(writer, f"{exc.strerror or exc}{where}".encode()[:_MAX_ANSWER])
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    os.close(writer)
    try:
        answer = b""
        while chunk := os.read(reader, 512):
            answer += chunk
    finally:
        os.close(reader)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, answer.decode(errors="replace")
