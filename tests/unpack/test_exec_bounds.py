"""``lamina exec`` with a timeout, and with images whose metadata is malformed: one line, never
a traceback. The image borrows the host's /usr (bound read-only), so real programs run in it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool
from tests.unpack.oci import d, gz, single, sym, tar_bytes

Lamina = Callable[..., CliResult]


def usr_image(lamina: Lamina, tmp_path: Path, **kwargs: object) -> tuple[str, Path]:
    """An unpacked image of merged-/usr symlinks and an empty /usr to bind the host's onto."""
    layer = gz(tar_bytes([d("usr"), sym("bin", "usr/bin"), sym("lib", "usr/lib"),
                          sym("lib64", "usr/lib64")]))
    single(tmp_path / "layout", [layer], **kwargs)  # type: ignore[arg-type]
    out = tmp_path / "out"
    assert lamina("unpack", f"oci:{tmp_path / 'layout'}:test", str(out)).code == 0
    public = out / "localhost/test:latest"
    return str(public), out


def test_a_command_past_its_timeout_is_killed_with_exit_124(
        lamina: Lamina, tmp_path: Path) -> None:
    require_tool("bwrap")
    image, _ = usr_image(lamina, tmp_path)
    started = time.monotonic()
    result = lamina("exec", "--bind", "/usr:/usr", "--timeout", "1", image, "--",
                    "sleep", "60")
    assert time.monotonic() - started < 30
    assert result.code == 124
    assert result.err.strip() == ("lamina: error: 'sleep' was still running after 1 s "
                                  "(--timeout); it was killed")
    quick = lamina("exec", "--bind", "/usr:/usr", image, "--timeout", "30", "--", "true")
    assert quick.code == 0, quick.err


def test_a_bad_timeout_is_a_usage_error(lamina: Lamina, tmp_path: Path) -> None:
    image, _ = usr_image(lamina, tmp_path)
    for value in ("0", "-1", "nan", "inf"):
        result = lamina("exec", "--timeout", value, image, "--", "true")
        assert result.code == 2, value
        assert result.err.strip().endswith("expected a positive number of seconds")


def test_a_malformed_record_falls_back_to_the_env_script(lamina: Lamina, tmp_path: Path) -> None:
    require_tool("bwrap")
    image, out = usr_image(lamina, tmp_path, env=["FROM_IMAGE=yes"])
    (record,) = (out / ".lamina/flats").iterdir()
    for broken in ({"config": ["not", "an", "object"]}, {"config": {"config": "Env"}}, [1]):
        record.write_text(json.dumps(broken))
        result = lamina("exec", "--bind", "/usr:/usr", "--cleanenv", image, "--",
                        "sh", "-c", "echo $FROM_IMAGE")
        assert result.code == 0, result.err
        assert result.out == "yes\n"
    record.write_bytes(b"\xff not json")
    result = lamina("exec", "--bind", "/usr:/usr", "--cleanenv", image, "--", "sh", "-c",
                    "echo $FROM_IMAGE")
    assert result.code == 0 and result.out == "yes\n", result.err


def test_an_image_env_with_a_nul_byte_is_refused_in_one_line(lamina: Lamina,
                                                             tmp_path: Path) -> None:
    image, _ = usr_image(lamina, tmp_path, env=["BAD=a\u0000b"])
    result = lamina("exec", "--bind", "/usr:/usr", image, "--", "true")
    assert result.code == 2
    assert result.err.strip() == ("lamina: error: the image's environment variable 'BAD' "
                                  "cannot be passed to a process (a NUL byte, or '=' in its "
                                  "name)")
