"""Built with real buildah, hostile values reach the image config byte for byte.

The property test builds ``FROM scratch`` plus the image-config instructions lamina renders
(``BuildUnit.config_instructions``, what both backends apply), a build of a fraction of a
second; the end-to-end test builds the tiny tree with many hostile values at once (env,
labels, workdir, user, a COPY destination with spaces and ``$``, a script name with a
quote) and reads the stored images' configs with ``skopeo inspect --config``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.platforms import parse_platform
from lamina.recipe import load_recipe
from lamina.render import build_unit
from tests.core.conftest import CliResult, require_tool
from tests.core.hostile_tree import Values, q, write_tree

# What a one-line instruction can carry (no C0/C1 control character but tab), plus the
# strings that broke it before.
SPECIAL = ["café", "costs $5", "${X}", "$X", "`id`", "it's", 'say "hi"', "back\\slash",
           "end\\", "\\n", "\\\\", " lead", "trail ", "a\tb", "FROM x", "RUN y", "\\$HOME",
           "$", "\ufeffbom", "\u2028", "\u00a0", "#c", "k=v", "--flag", "", "日本語", "😀",
           "${X:-default}", "'\"'\"'", "a  b"]
carried = st.one_of(st.sampled_from(SPECIAL), st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t"), max_size=16))


def run(cmd: list[str], timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (cmd, proc.stderr)
    return proc.stdout


def config_of(transport: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(["skopeo", "inspect", "--config", transport]))
    config: dict[str, Any] = data["config"]
    return config


def build_scratch(lines: list[str], context: Path) -> dict[str, Any]:
    """The config of ``FROM scratch`` + ``lines`` built by buildah (then removed)."""
    (context / "Containerfile").write_text("FROM scratch\n" + "\n".join(lines) + "\n",
                                           encoding="utf-8")
    tag = f"localhost/lamina-test/render-built:{uuid.uuid4().hex[:12]}"
    run(["buildah", "bud", "--isolation", "chroot", "--quiet", "-f",
         str(context / "Containerfile"), "-t", tag, str(context)])
    try:
        return config_of(f"containers-storage:{tag}")
    finally:
        subprocess.run(["buildah", "rmi", tag], capture_output=True, timeout=60, check=False)


def env_of(config: dict[str, Any], names: set[str]) -> dict[str, str]:
    pairs = dict(entry.split("=", 1) for entry in config.get("Env") or [])
    return {k: v for k, v in pairs.items() if k in names}


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(carried, min_size=1, max_size=8))
def test_built_config_holds_the_recipes_values_exactly(values: list[str]) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    v = Values()
    v.env = {f"V{i}": value for i, value in enumerate(values)}
    v.layer_env = {"LAYER_VAR": values[-1]}
    v.labels = {f"org.example.l{i}": value for i, value in enumerate(values)}
    v.description = values[0]
    v.workdir = "/" + values[0]
    v.entrypoint = values
    v.cmd = list(reversed(values))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        write_tree(root, v)
        recipe = load_recipe(root)
        unit = build_unit(recipe, recipe.images["img"], parse_platform("linux/amd64"),
                          1_700_000_000, None)
        context = Path(tmp) / "context"
        context.mkdir()
        config = build_scratch(unit.config_instructions(), context)
    assert env_of(config, set(v.env) | {"LAYER_VAR"}) == {**v.env, "LAYER_VAR": values[-1]}
    labels = config["Labels"]
    for key, value in v.labels.items():
        assert labels[key] == value
    if v.description:
        assert labels["org.opencontainers.image.description"] == v.description
    assert config["WorkingDir"] == v.workdir
    assert config["User"] == v.user
    assert config["Entrypoint"] == v.entrypoint
    assert config["Cmd"] == v.cmd


HOSTILE_ENV = {f"H{i}": value for i, value in enumerate(SPECIAL)}
DEST = "/opt/hello wörld $HOME ${X}/"
WORKDIR = "/opt/it's a \"dir\" $X\\"


def test_a_tree_built_with_hostile_values_has_them_byte_for_byte(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    root = tree("tiny")
    app = root / "images/app/image.yaml"
    app.write_text(
        "description: " + q("adds data files; costs $5 — «café»") + "\n"
        "parent: base\nlayers: [hello-files]\nenv:\n"
        + "".join(f"  {k}: {q(v)}\n" for k, v in HOSTILE_ENV.items())
        + f"  HELLO_DIR: {q(DEST)}\n"
        + "labels:\n" + "".join(f"  org.example.h{i}: {q(v)}\n" for i, v in enumerate(SPECIAL))
        + "tests:\n  - name: greeting present\n"
          "    run: grep -q \"hello from lamina\" \"$HELLO_DIR/greeting.txt\"\n",
        encoding="utf-8")
    files = root / "layers/hello-files/layer.yaml"
    files.write_text(files.read_text().replace("dest: /opt/hello", f"dest: {q(DEST)}"))
    script = root / "layers/hello-script"
    (script / "build.sh").rename(script / "build it's.sh")
    (script / "layer.yaml").write_text((script / "layer.yaml").read_text().replace(
        "script: build.sh", "script: \"build it's.sh\""))
    leaf = root / "images/leaf/image.yaml"
    leaf.write_text(leaf.read_text().replace("workdir: /opt/hello", f"workdir: {q(WORKDIR)}")
                    + "user: \"1000:1000\"\n", encoding="utf-8")

    result = lamina("-C", str(root), "build", "--json")
    assert result.code == 0, result.out + result.err
    assert {r["image"]: r["outcome"] for r in result.json()} == {
        "base": "built", "app": "built", "leaf": "built"}
    store = root / ".lamina/store"
    for name in ("app", "leaf"):
        config = config_of(f"oci:{store}:{name}-amd64")
        assert env_of(config, set(HOSTILE_ENV) | {"HELLO_DIR", "LANG"}) == {
            **HOSTILE_ENV, "HELLO_DIR": DEST, "LANG": "C.UTF-8"}
        labels = config["Labels"]
        assert {k: labels[k] for k in labels if k.startswith("org.example.")} == {
            f"org.example.h{i}": v for i, v in enumerate(SPECIAL)}
    app_config = config_of(f"oci:{store}:app-amd64")
    assert app_config["Labels"]["org.opencontainers.image.description"] == \
        "adds data files; costs $5 — «café»"
    leaf_config = config_of(f"oci:{store}:leaf-amd64")
    assert leaf_config["WorkingDir"] == WORKDIR
    assert leaf_config["User"] == "1000:1000"
