"""One input and what became of it: write a case's files, read them with a target under a watchdog, classify."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from act3d.errors import CheckpointError, DataError

if TYPE_CHECKING:
    from .targets import Target

OK = ("loaded", "DataError", "CheckpointError")
FAILURES = ("WRONG-ERROR", "UNNAMED", "BAD-OUTPUT", "TIMEOUT", "CODE-RAN")


class InputTimeout(BaseException):
    """Raised in the main thread by the watchdog; a BaseException so that no reader's ``except`` eats it."""


class BadOutputError(Exception):
    """A reader returned data that breaks its documented promise."""


@dataclass
class Case:
    """One generated input: files (relative path -> bytes) and the file an error must name."""

    files: dict[str, bytes]
    blame: str  # relative path of the damaged file; "" = any file under the input folder
    how: str


@dataclass
class Outcome:
    kind: str
    detail: str = ""


@contextlib.contextmanager
def watchdog(seconds: float):
    """Raise InputTimeout in the main thread after ``seconds`` (SIGUSR1 from a timer thread).

    Not SIGALRM: pytest-timeout owns that one. A C call that never returns to Python is caught by
    the hard backstop of :func:`run_case` (faulthandler exits the process with every stack).
    """
    main = threading.main_thread().ident

    def interrupt(signum, frame):
        raise InputTimeout(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(seconds, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def write_case(case: Case, root: Path) -> None:
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run_case(target: Target, case: Case, root: Path, marker: Path, timeout: float) -> Outcome:
    """Write ``case`` under ``root`` (which must not exist), read it with ``target``, classify what happened."""
    write_case(case, root)
    faulthandler.dump_traceback_later(timeout * 20 + 30, exit=True)  # hard backstop for a hang in C
    try:
        with warnings.catch_warnings(), watchdog(timeout):
            warnings.simplefilter("ignore")
            target.load(root)
        outcome = Outcome("loaded")
    except InputTimeout as err:
        outcome = Outcome("TIMEOUT", str(err))
    except (DataError, CheckpointError) as err:
        blame = os.fspath(root / case.blame) if case.blame else os.fspath(root)
        message = str(err)
        named = message.startswith(os.fspath(root)) and (not case.blame or Path(blame).name in message)
        outcome = Outcome(type(err).__name__ if named else "UNNAMED", message[:300])
    except BadOutputError as err:
        outcome = Outcome("BAD-OUTPUT", str(err)[:300])
    except Exception as err:
        outcome = Outcome("WRONG-ERROR", f"{type(err).__name__}: {str(err)[:300]}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    if marker.exists():
        marker.unlink()
        outcome = Outcome("CODE-RAN", f"a payload created {marker}; previous outcome {outcome.kind}")
    return outcome
