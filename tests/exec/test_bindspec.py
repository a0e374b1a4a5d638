"""``--bind`` parsing against apptainer's own cases
(pkg/runtime/engine/apptainer/config/bind_test.go, TestParseBindPath)."""

from __future__ import annotations

import pytest

from lamina.errors import UsageError
from lamina.sandbox.bindspec import env_bind_values, parse_binds


def pairs(*values: str) -> list[tuple[str, str, bool]]:
    return [(b.source, b.destination, b.readonly) for b in parse_binds(values, "/work")]


def test_apptainers_bind_cases() -> None:
    assert pairs("/opt") == [("/opt", "/opt", False)]                                # srcOnly
    assert pairs("/opt,/tmp") == [("/opt", "/opt", False), ("/tmp", "/tmp", False)]
    assert pairs("/opt:/other") == [("/opt", "/other", False)]                       # srcDst
    assert pairs("/opt:/other,/tmp:/other2,") == [("/opt", "/other", False),
                                                  ("/tmp", "/other2", False)]
    assert pairs("/opt:/other:ro") == [("/opt", "/other", True)]                     # srcDstRO
    assert pairs("/opt:/other:ro,/tmp:/other2:ro") == [("/opt", "/other", True),
                                                       ("/tmp", "/other2", True)]
    assert pairs("/opt:/other:ro,rw") == [("/opt", "/other", True)]                  # srcDstRORW
    assert pairs("/opt:/other:ro,rw,/tmp:/other2:ro,rw") == [("/opt", "/other", True),
                                                             ("/tmp", "/other2", True)]


def test_relative_sources_and_escapes() -> None:
    # launcher: filepath.Abs(source); bind.go: "\\," and "\\:" escape in the source
    assert pairs("data:/d") == [("/work/data", "/d", False)]
    assert pairs("/a\\,b:/c") == [("/a,b", "/c", False)]
    assert pairs("/a\\:b:/c") == [("/a:b", "/c", False)]


@pytest.mark.parametrize(("spec", "message"), [
    ("/opt:/other:invalid", "--bind '/opt:/other:invalid': 'invalid' is not a valid bind option "
                            "(ro, rw)"),                                             # invalidOption
    ("/opt:/other:rw:invalid", "--bind '/opt:/other:rw:invalid': bad bind syntax, expected "
                               "src[:dst[:opts]]"),                                  # invalidSpec
    ("test.sif:/other:image-src", "--bind 'test.sif:/other:image-src': 'image-src' is not a "
                                  "valid bind option (ro, rw)"),                     # NoVal
    ("test.sif:/other:image-src=/opt", "--bind 'test.sif:/other:image-src=/opt': image-src "
                                       "binds a data image (SIF/ext3), which lamina exec does "
                                       "not mount"),
])
def test_bad_binds(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_binds([spec], "/work")
    assert str(err.value) == message


def test_environment_binds_apptainer_before_singularity() -> None:
    # action_flags.go:122 EnvKeys BIND, BINDPATH; the APPTAINER_ prefix takes precedence
    assert env_bind_values({"APPTAINER_BIND": "/a", "SINGULARITY_BIND": "/b",
                            "SINGULARITY_BINDPATH": "/c", "APPTAINER_BINDPATH": " "}) == ["/a"]
    assert env_bind_values({"SINGULARITY_BIND": "/b", "SINGULARITY_BINDPATH": "/c"}) == [
        "/b", "/c"]
