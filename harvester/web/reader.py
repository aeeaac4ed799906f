"""A reader process of the extraction pool (`harvester.web.pool`): `python -m harvester.web.reader`.

It is told the parent's import path and which function reads a page, then reads pages one at a
time from its stdin and answers each on its stdout, until the pipe closes. Its stdout is kept
for answers only: anything a library prints goes to stderr. Ctrl-C is the harvest's to handle (it
saves what it has), so a reader ignores it and ends when the harvest closes its pipe.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from functools import reduce

from harvester.web.pool import receive, send


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt an answer
    requests = sys.stdin.buffer
    try:
        path, module, name = receive(requests)
    except EOFError:
        return
    sys.path[:] = path
    read = reduce(getattr, name.split("."), importlib.import_module(module))
    while True:
        try:
            body, url, charset = receive(requests)
        except EOFError:
            return
        try:
            answer = (True, read(body, url, charset))
        except Exception as exc:  # the pool reports it as this page's error; the reader goes on
            answer = (False, f"the page could not be read ({type(exc).__name__}: {exc})"[:300])
        send(answers, answer)


if __name__ == "__main__":
    main()
