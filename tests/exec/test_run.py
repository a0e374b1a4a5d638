"""``lamina run`` and what both commands hand back: the runscript with its arguments, exit
statuses, and the refusals (apptainer/apptainer 917d6657)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.exec.conftest import TIMEOUT, Lamina
from tests.exec.images import busybox_entries, unpacked
from tests.unpack.oci import Entry, f


def test_run_executes_the_runscript_with_arguments(lamina: Lamina, image: Path) -> None:
    # cmd/internal/cli/actions.go:250 run = /.singularity.d/actions/run + args;
    # action_script.sh:241 exec /.singularity.d/runscript "$@" (ENTRYPOINT + CMD, or
    # ENTRYPOINT + the arguments, as the unpacker's runscript does)
    default = lamina("run", str(image))
    assert (default.code, default.out) == (0, "entry default cmd\n"), default.err
    given = lamina("run", str(image), "one", "two words")
    assert (given.code, given.out) == (0, "entry one two words\n"), given.err
    dashed = lamina("run", str(image), "--", "--help")
    assert (dashed.code, dashed.out) == (0, "entry --help\n"), dashed.err


def test_run_sees_the_same_environment_as_exec(lamina: Lamina, tmp_path: Path) -> None:
    # process_linux.go:853 APPTAINER_COMMAND = base name of the action (run)
    img = unpacked(tmp_path, busybox_entries(), env=["HELLO=image"],
                   entrypoint=["/bin/sh", "-c", 'echo "$HELLO $APPTAINER_COMMAND $0 $PWD"'])
    result = lamina("run", str(img), "arg0", env={"HELLO": "host"}, cwd=tmp_path)
    assert (result.code, result.out) == (0, f"image run arg0 {tmp_path}\n"), result.err


def test_run_without_a_runscript_falls_back_to_sh(lamina: Lamina, tmp_path: Path) -> None:
    # action_script.sh:241-248: no executable runscript -> /apptainer -> /bin/sh, with an INFO
    img = unpacked(tmp_path, busybox_entries(), cmd=["true"])
    (img / ".singularity.d/runscript").chmod(0o644)
    result = lamina("run", str(img), "-c", "echo fallback")
    assert (result.code, result.out) == (0, "fallback\n"), result.err
    assert "INFO:    No runscript found in container, executing /bin/sh" in result.err


def test_exit_status_and_signals_are_passed_through(lamina: Lamina, image: Path) -> None:
    # process_linux.go:320-326: the command's status, 128+N for a signal N
    assert lamina("exec", str(image), "sh", "-c", "exit 7").code == 7
    assert lamina("exec", str(image), "sh", "-c", "kill -TERM $$").code == 128 + 15
    assert lamina("run", str(image.parent / image.name)).code == 0


def test_a_missing_command_and_a_missing_shell(lamina: Lamina, image: Path,
                                               tmp_path: Path) -> None:
    assert lamina("exec", str(image)).err == (
        "lamina: error: no command given: lamina exec DIR [--] CMD [ARGS...]\n")
    assert lamina("exec", str(tmp_path / "nope"), "true").err == (
        f"lamina: error: {tmp_path / 'nope'} is not a directory (unpack an image first: "
        "lamina unpack REF DIR)\n")
    no_shell: list[Entry] = [e for e in busybox_entries() if e.name != "bin/sh"]
    img = unpacked(tmp_path, [*no_shell, f("bin/tool", "#!/bin/busybox sh\necho\n", 0o755)])
    result = lamina("exec", str(img), "/bin/tool")
    assert result.code == 2
    assert result.err == (f"lamina: error: {img} has no /bin/sh: lamina runs apptainer's action "
                          "script (clean the environment, source /.singularity.d/env) with the "
                          "image's shell\n")


def test_an_interrupt_is_the_commands_to_handle(image: Path, tmp_path: Path) -> None:
    # process_linux.go:262-305: the starter catches signals and passes them on; lamina ignores
    # SIGINT while the command runs, so a Ctrl-C that the command handles does not kill it
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lamina.cli", "exec", str(image), "sh", "-c",
         f"touch {marker}; sleep 2; echo finished"],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PWD": str(tmp_path)})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert marker.exists()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert (proc.returncode, out) == (0, "finished\n")
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
