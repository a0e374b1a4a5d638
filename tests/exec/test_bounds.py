"""``lamina exec --timeout`` (lamina's own option: apptainer has none), and images whose
metadata is malformed: one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.exec.conftest import IMAGE_ENV, Lamina
from tests.exec.images import busybox_entries, unpacked


def test_a_command_past_its_timeout_is_killed_with_exit_124(lamina: Lamina,
                                                            image: Path) -> None:
    result = lamina("exec", "--timeout", "1", str(image), "--", "sleep", "60")
    assert result.code == 124
    assert result.err.strip() == ("lamina: error: 'sleep' was still running after 1 s "
                                  "(--timeout); it was killed")
    quick = lamina("exec", str(image), "--timeout", "30", "--", "true")
    assert quick.code == 0, quick.err


def test_a_bad_timeout_is_a_usage_error(lamina: Lamina, image: Path) -> None:
    for value in ("0", "-1", "nan", "inf"):
        result = lamina("exec", "--timeout", value, str(image), "--", "true")
        assert result.code == 2, value
        assert result.err.strip() == (f"lamina: error: --timeout {float(value):g}: expected a "
                                      "positive number of seconds"), value


def test_a_malformed_flat_record_does_not_matter(lamina: Lamina, tmp_path: Path) -> None:
    # exec takes the image's environment from /.singularity.d/env only, as apptainer does;
    # lamina's record beside the flat is not read
    public = unpacked(tmp_path, busybox_entries(), env=[*IMAGE_ENV, "FROM_IMAGE=yes"])
    records = list(public.resolve().parent.parent.parent.glob(".lamina/flats/*.json"))
    assert len(records) == 1
    for broken in (json.dumps({"config": ["not", "an", "object"]}).encode(), b"\xff not json"):
        records[0].write_bytes(broken)
        result = lamina("exec", "--cleanenv", str(public), "--", "sh", "-c", "echo $FROM_IMAGE")
        assert result.code == 0, result.err
        assert result.out == "yes\n"


def test_an_image_env_with_a_nul_byte_is_no_traceback(lamina: Lamina, tmp_path: Path) -> None:
    public = unpacked(tmp_path, busybox_entries(), env=[*IMAGE_ENV, "BAD=a\u0000b"])
    result = lamina("exec", str(public), "--", "sh", "-c", "echo ${#BAD}")
    assert "Traceback" not in result.err
    assert result.code == 0, result.err
    # the env script carries what the unpacker wrote; the shell stops the value at the NUL
    assert result.out.strip() in ("1", "2")
