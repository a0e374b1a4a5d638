"""Plan, build, rebuild: the make-like loop on the tiny tree with real buildah."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool

Lamina = Callable[..., CliResult]


def statuses(lamina: Lamina, root: Path) -> dict[str, tuple[str, str]]:
    result = lamina("-C", str(root), "plan", "--json")
    assert result.code == 0, result.err
    return {e["image"]: (e["status"], e["reason"]) for e in result.json()}


def test_plan_build_plan_then_edits_rebuild_exactly_what_changed(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    root = tree("tiny")
    assert {s for s, _ in statuses(lamina, root).values()} == {"build"}

    built = lamina("-C", str(root), "build", "--json")
    assert built.code == 0, built.err + built.out
    outcomes = {r["image"]: r["outcome"] for r in built.json()}
    assert outcomes == {"base": "built", "app": "built", "leaf": "built"}
    assert all(s == "up-to-date" for s, _ in statuses(lamina, root).values())

    again = lamina("-C", str(root), "build", "--json")
    assert again.code == 0
    assert {r["outcome"] for r in again.json()} == {"up-to-date"}

    # Editing one file of the leaf's layer lists exactly the leaf, and says which file.
    script = root / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + "echo more > /opt/hello/more.txt\n")
    plan = statuses(lamina, root)
    assert plan["base"][0] == "up-to-date" and plan["app"][0] == "up-to-date"
    assert plan["leaf"] == ("build", "layer hello-script: file build.sh changed")

    # Editing a file of a middle layer lists it and its descendants, with the parent reason.
    greeting = root / "layers/hello-files/files/greeting.txt"
    greeting.write_text("hello again\n")
    (root / "images/app/image.yaml").write_text(
        (root / "images/app/image.yaml").read_text().replace("hello from lamina", "hello again"))
    plan = statuses(lamina, root)
    assert plan["base"][0] == "up-to-date"
    assert plan["app"][0] == "build" and "directory files/ changed" in plan["app"][1]
    assert plan["leaf"][0] == "build" and plan["leaf"][1].startswith("parent app rebuilds")

    # Editing the root layer lists the whole tree.
    root_layer = root / "layers/busybox-root/layer.yaml"
    root_layer.write_text(root_layer.read_text().replace(
        "    bin/id: busybox\n", "    bin/id: busybox\n    bin/sort: busybox\n"))
    plan = statuses(lamina, root)
    assert {name: s for name, (s, _) in plan.items()} == {
        "base": "build", "app": "build", "leaf": "build"}
    assert "layer busybox-root: definition changed" in plan["base"][1]


def test_store_is_a_real_oci_layout_that_skopeo_and_umoci_read(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    require_tool("umoci")
    root = tree("tiny")
    assert lamina("-C", str(root), "build", "leaf").code == 0
    store = root / ".lamina/store"
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{store}:leaf-amd64"],
                             capture_output=True, text=True, check=True)
    assert '"dev.lamina.key"' in inspect.stdout
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{store}:leaf-amd64", str(bundle)],
                   capture_output=True, check=True)
    assert (bundle / "rootfs/opt/hello/built.txt").read_text() == "built\n"
    assert (bundle / "rootfs/opt/hello/arch.txt").read_text() == "x86_64\n"
    assert (bundle / "rootfs/opt/hello/greeting.txt").read_text().startswith("hello from")


def test_render_prints_the_containerfile(lamina: Lamina, tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    result = lamina("-C", str(root), "render", "leaf")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any(line.startswith("FROM localhost/lamina/app:amd64-") for line in lines)
    assert "# layer 1/1: hello-script (script)" in lines
    assert any(line.startswith("RUN --mount=type=secret,id=lamina-ca") for line in lines)
    assert 'CMD ["cat", "/opt/hello/greeting.txt"]' in lines
