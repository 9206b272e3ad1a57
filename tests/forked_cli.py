"""Serve ``python -m gan_lightning.train`` runs as forks of one process that imported it once.

A fresh interpreter spends seconds importing torch, Lightning and Hydra; a fault-injection test
that kills and resumes a run twenty times would spend most of its time there. This process
imports everything once (and runs no torch op, so no thread pool exists to be broken by a
fork), then for each request forks a child that runs the command's ``main()`` exactly as
``python -m`` does, its output going to a log file. The child is a real process: ``kill -9``
hits it as it would hit a user's run.

Protocol, one JSON object per line: the test writes ``{"args": [...], "log": path}``; this
process answers ``{"pid": n}`` when the child starts and ``{"status": code}`` when it ends
(a negative code is the signal that ended it, as in ``subprocess``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import reliability_helpers  # noqa: F401  (the test callbacks and writers the runs name)

from gan_lightning import train


def run_child(arguments: list[str], log: str) -> None:
    """In the forked child: run the command, then leave without returning into the loop."""
    code = 1
    try:
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        sys.argv = ["gan_lightning.train", *arguments]
        try:
            train.main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request["args"], request["log"])
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
