"""Ctrl-C while ``lamina unpack`` works: exit 130 and one line, or the unpack completed; never a
half-written flat, a temporary flat or a temporary link left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.unpack.oci import d, f, gz, single, tar_bytes

LAMINA = str(Path(sys.executable).with_name("lamina"))
INTERRUPTED = "lamina: interrupted; rerun the same command to resume\n"


def seconds(args: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(args, capture_output=True, timeout=300, check=True)
    return time.monotonic() - started


def test_ctrl_c_during_an_unpack_leaves_no_partial_flat(tmp_path: Path) -> None:
    entries = [d(f"d{n}") for n in range(50)]
    entries += [f(f"d{n % 50}/file{n}", b"x" * 1024) for n in range(20000)]
    single(tmp_path / "layout", [gz(tar_bytes(entries))])
    args = [LAMINA, "unpack", f"oci:{tmp_path / 'layout'}:test"]
    start_up = seconds([LAMINA, "--version"])
    total = seconds([*args, str(tmp_path / "timing")])
    # a few during start-up, most between start-up and the end of the unpack, one after it
    delays = [start_up / 2] + [start_up + (total - start_up) * k / 8 for k in range(9)]
    delays += [total * 1.5]
    outcomes = []
    for step, delay in enumerate(delays):
        out = tmp_path / f"out{step}"
        proc = subprocess.Popen([*args, str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
        assert leftovers == [], leftovers
        if proc.returncode == 130:
            assert err.decode() == INTERRUPTED
            assert not (out / "localhost/test:latest").exists()
            assert not list(out.glob(".lamina/flats/*")), "no record without a finished flat"
            # past start-up, the flat's directory exists: the interrupt hit the unpack itself
            outcomes.append("during the unpack" if (out / ".flat").exists() else "interrupted")
        else:
            assert proc.returncode == 0, err
            assert (out / "localhost/test:latest/d7/file7").read_bytes() == b"x" * 1024
            outcomes.append("completed")
    assert "during the unpack" in outcomes, (start_up, total, outcomes)
