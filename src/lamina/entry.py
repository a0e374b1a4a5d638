"""The ``lamina`` console command: the CLI behind a Ctrl-C guard that exists before it loads.

The console script runs ``from lamina.entry import main``. Importing :mod:`lamina.cli` and the
command modules is most of lamina's start-up, and a Ctrl-C during it used to end in a traceback
from the import machinery, before :func:`lamina.cli.main` could catch anything. So this module
imports nothing of lamina at its top: the guard is in place before the first heavy import, and
everything after it (imports, the command, the final flush of stdout) runs inside it.

After the command has finished, or once it has been interrupted, SIGINT is ignored: the work is
done (or already unwound, temp files removed by the code that made them), and a second Ctrl-C
during interpreter shutdown must not print a traceback either. A Ctrl-C before Python has
installed its own handler (while the interpreter itself starts) kills the process by the signal,
which a shell reports as exit 130 too; no lamina code has run then. (One window is Python's
and not lamina's: the few milliseconds in which the interpreter's ``site`` module runs the
environment's ``.pth`` files, before this module is imported.)

Python delivers Ctrl-C as a ``KeyboardInterrupt`` raised wherever the interpreter happens to
be, and inside a weakref callback or a ``__del__`` (the import system has some) such an
exception cannot propagate: Python prints "Exception ignored" and carries on, so the Ctrl-C
would be lost and a traceback printed. :func:`_replay_lost_interrupts` catches exactly that
case and raises the interrupt again a millisecond later, in ordinary code.
"""


import os
import sys

INTERRUPTED = "lamina: interrupted; rerun the same command to resume\n"
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cmd | head`


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself closed: nothing more to say
        pass


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush of
    what is still buffered cannot fail again."""
    try:  # noqa: SIM105 (no contextlib here: each import before the guard is a window)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        pass


def _flush_stdout() -> int | None:
    """Flush stdout now, inside the guard; None if it worked, else the exit code."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        _stderr("lamina: error: the output pipe was closed before all output was written\n")
        return EXIT_BROKEN_PIPE
    except (OSError, ValueError):
        return 1
    return None


def _raise_interrupt(_signum: int, _frame: object) -> None:  # a signal handler
    raise KeyboardInterrupt


def _replay_lost_interrupts() -> None:
    import signal

    previous = sys.unraisablehook

    def hook(unraisable: "sys.UnraisableHookArgs") -> None:
        if isinstance(unraisable.exc_type, type) and issubclass(unraisable.exc_type,
                                                                KeyboardInterrupt):
            # not raised here: an exception in this hook would be printed, not raised
            signal.signal(signal.SIGALRM, _raise_interrupt)
            signal.setitimer(signal.ITIMER_REAL, 0.001)
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main() -> int:
    try:
        try:
            _replay_lost_interrupts()
            from lamina.cli import main as cli_main

            try:
                code = cli_main(sys.argv[1:])
            except SystemExit as done:  # argparse: --help, --version, a usage error
                code = done.code if isinstance(done.code, int) else int(done.code is not None)
            flushed = _flush_stdout()
            return code if flushed is None else flushed
        except KeyboardInterrupt:
            _ignore_interrupts()
            _stderr(INTERRUPTED)
            return EXIT_INTERRUPTED
        finally:
            _ignore_interrupts()
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        return EXIT_INTERRUPTED
