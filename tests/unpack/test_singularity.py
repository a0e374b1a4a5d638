"""``/.singularity.d`` as the unpacker writes it: ENV with its quoting, runscript, links."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from lamina.unpack.singularity import env_script, parse_env_script, runscript
from tests.core.conftest import CliResult
from tests.unpack.oci import d, f, gz, single, sym, tar_bytes

Lamina = Callable[..., CliResult]
TRICKY = 'a "quoted" $HOME `date` back\\slash \'single\' ${X:-y}'


def test_env_script_has_the_unpackers_exact_lines() -> None:
    script = env_script(["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8", "EMPTY=", "BARE",
                         'Q=say "hi" $USER `x` \\n'])
    assert script == (
        "#!/bin/sh\n"
        'export PATH="/opt/bin:/usr/bin"\n'
        'export LANG="${LANG:-"C.UTF-8"}"\n'
        'export EMPTY="${EMPTY:-""}"\n'
        'export BARE="${BARE:-}"\n'
        'export Q="${Q:-"say \\"hi\\" \\$USER \\`x\\` \\\\n"}"\n')


def test_env_script_sourced_by_sh_gives_the_values_back_and_host_values_win() -> None:
    # the script alone: a value already set wins. Under apptainer (and lamina exec) the host
    # environment is cleared before it is sourced, so the image wins: tests/exec/
    env = [f"TRICKY={TRICKY}", "PATH=/image/bin:/bin:/usr/bin", "HOSTWINS=image"]
    script = env_script(env)
    shown = subprocess.run(
        ["sh", "-c", script + 'printf "%s\\n%s\\n%s" "$TRICKY" "$PATH" "$HOSTWINS"'],
        capture_output=True, text=True, check=True,
        env={"HOSTWINS": "host", "PATH": "/host/bin:/usr/bin:/bin"}).stdout
    assert shown.split("\n") == [TRICKY, "/image/bin:/bin:/usr/bin", "host"]
    assert parse_env_script(script) == env


def test_runscript_runs_entrypoint_with_cmd_or_arguments(tmp_path: Path) -> None:
    script = tmp_path / "runscript"
    script.write_text(runscript(["printf", "[%s]"], ["default arg", "$HOME"]))
    script.chmod(0o755)
    run = lambda *a: subprocess.run([str(script), *a], capture_output=True,  # noqa: E731
                                    text=True, check=True).stdout
    assert run() == "[default arg][$HOME]"
    assert run("x y", "z") == "[x y][z]"
    script.write_text(runscript([], ["printf", "<%s>", "only cmd"]))
    assert run() == "<only cmd>"
    assert run("echo", "override") == "override\n"


def test_flat_gets_singularity_metadata_and_keeps_image_symlinks(
        lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([d("etc"), f("etc/hosts", "127.0.0.1 image\n"),
                          sym("environment", "etc/custom-env"),
                          d(".singularity.d"), f(".singularity.d/labels.json", "{}"),
                          sym(".singularity.d/env", "/tmp")]))
    layout = tmp_path / "layout"
    single(layout, [layer], env=["HELLO=world", "PATH=/usr/bin:/bin"],
           entrypoint=["/bin/echo"], cmd=["hi"])
    out = tmp_path / "out"
    assert lamina("unpack", f"oci:{layout}:test", str(out)).code == 0
    root = out / "localhost/test:latest"
    sd = root / ".singularity.d"
    assert (sd / "env/10-docker2singularity.sh").read_text() == (
        '#!/bin/sh\nexport HELLO="${HELLO:-"world"}"\nexport PATH="/usr/bin:/bin"\n')
    assert "OCI_ENTRYPOINT='\"/bin/echo\"'\nOCI_CMD='\"hi\"'\n" in (sd / "runscript").read_text()
    for name in ("actions/exec", "actions/run", "actions/shell", "actions/start", "actions/test",
                 "env/01-base.sh", "env/90-environment.sh", "env/91-environment.sh",
                 "env/95-apps.sh", "env/99-base.sh", "env/99-runtimevars.sh", "startscript"):
        assert os.stat(sd / name).st_mode & 0o777 == 0o755, name
    assert (sd / "env").is_dir() and not (sd / "env").is_symlink()  # the image's link replaced
    assert (sd / "labels.json").read_text() == "{}"  # other files of the image's dir stay
    assert (sd / "libs").is_dir()
    assert os.readlink(root / "singularity") == ".singularity.d/runscript"
    assert os.readlink(root / ".exec") == ".singularity.d/actions/exec"
    assert os.readlink(root / "environment") == "etc/custom-env"  # present: left alone
    for fhs in ("dev", "proc", "root", "var/tmp", "tmp", "sys", "home"):
        assert (root / fhs).is_dir(), fhs
    assert (root / "etc/hosts").read_text() == "127.0.0.1 image\n"  # not truncated
