"""``lamina doctor`` tells what is missing and how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lamina.doctor import check_platform
from lamina.platforms import Platform
from tests.core.conftest import CliResult

ARM64 = Platform("linux", "arm64")


def test_doctor_passes_on_a_set_up_machine(lamina: Callable[..., CliResult],
                                           tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    result = lamina("-C", str(root), "doctor", "--json")
    checks = {c["check"]: c for c in result.json()}
    assert result.code == 0, checks
    assert checks["platform linux/arm64"]["ok"]
    assert checks["tool buildah"]["detail"].startswith("buildah version")


def test_binfmt_problems_come_with_the_fix(tmp_path: Path) -> None:
    unmounted = check_platform(ARM64, tmp_path)
    assert not unmounted.ok and "mount -t binfmt_misc" in unmounted.fix
    (tmp_path / "status").write_text("enabled\n")
    missing = check_platform(ARM64, tmp_path)
    assert not missing.ok and "qemu-user-static" in missing.fix
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
    no_fix_flag = check_platform(ARM64, tmp_path)
    assert not no_fix_flag.ok and "F flag" in no_fix_flag.detail
    (tmp_path / "qemu-aarch64").write_text("disabled\nflags: PF\n")
    disabled = check_platform(ARM64, tmp_path)
    assert not disabled.ok and "update-binfmts --enable qemu-aarch64" in disabled.fix
