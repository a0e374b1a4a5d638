"""From one (image, platform) node of the tree to the Containerfile that builds it, and its key.

The content key is a hash over everything that can change the image's bytes: each layer's
canonical definition and every file it reads, build arguments, the image's own config, the
parent's key (or an external parent's per-platform digest), the platform, the timestamp
epoch, and :data:`KEY_FORMAT`. The same inputs are kept by name in :class:`BuildUnit.inputs`
so that the plan can say *which* one changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lamina.hashing import sha256_data
from lamina.layerkinds import RenderedLayer, RootfsRequest, render_layer
from lamina.platforms import Platform
from lamina.quoting import (
    ENV_NAME,
    LABEL_KEY,
    USER_NAME,
    Origin,
    argv,
    check_line_length,
    instruction_arg,
    json_args,
    key_value,
)
from lamina.quoting import (
    name as checked_name,
)
from lamina.recipe import Image, Recipe

# 2: apt layers recompile Debian's timestamped .pyc hash-based
# 3: files reach keys and layers with git's modes (0644/0755, lamina.filemodes), so a tree
#    whose checkout had other modes (a umask of 0002) gets a new key; a debs rootfs has tmp
#    1777 and its packages in the dpkg database, which changes its bytes
# 4: pip layers install through the wheel cache, and a failed download fails the step (the
#    previous script could commit a pip layer without its packages under a good key)
KEY_FORMAT = 4
KEY_LABEL = "dev.lamina.key"
IMAGE_LABEL = "dev.lamina.image"
DESCRIPTION_LABEL = "org.opencontainers.image.description"


@dataclass
class BuildUnit:
    image: Image
    platform: Platform
    key: str
    inputs: dict[str, str]
    parent_ref: str
    layers: list[RenderedLayer]
    build_args: dict[str, str]
    epoch: int
    parent_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    inherited_user: str | None = None  # USER the nearest ancestor of the tree set
    user_origin: Origin | None = None  # where inherited_user was written

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def store_ref(self) -> str:
        """Reference name of this node in the local OCI layout store."""
        return f"{self.image.name}-{self.platform.arch}"

    @property
    def local_tag(self) -> str:
        """Name of the built image in buildah's containers-storage."""
        return local_tag(self.image.name, self.platform, self.key)

    @property
    def rootfs_requests(self) -> list[RootfsRequest]:
        return [layer.rootfs for layer in self.layers if layer.rootfs is not None]

    def context_files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for layer in self.layers:
            files.update(layer.context_files)
        return files

    def containerfile(self) -> str:
        image = self.image
        lines = [
            f"# lamina: image '{image.name}' for {self.platform}",
            f"# key: {self.key}",
            f"FROM {instruction_arg(self.parent_ref, Origin(image.doc, ('parent',)))}",
            "ARG SOURCE_DATE_EPOCH",
        ]
        lines += [f"ARG {instruction_arg(name, Origin(image.doc, ('build_args', name)))}"
                  for name in sorted(self.build_args)]
        total = len(self.layers)
        if total and self.inherited_user not in (None, "root", "0"):
            # layers install system-wide and read the root-only CA secret: run them as root,
            # and config_instructions() gives the image its user back
            lines.append("USER root")
        for index, rendered in enumerate(self.layers, start=1):
            lines.append(f"# layer {index}/{total}: {rendered.layer.name} ({rendered.layer.kind})")
            lines.append(check_line_length(rendered.instruction,
                                           Origin(rendered.layer.doc, ())))
        lines += self.config_instructions()
        return "\n".join(lines) + "\n"

    def config_instructions(self) -> list[str]:
        """ENV/WORKDIR/USER/ENTRYPOINT/CMD/LABEL: the image config, in Dockerfile syntax.

        Every value goes through :mod:`lamina.quoting`, so it reaches the image config
        exactly as the recipe wrote it (or the recipe is refused, located at the value).
        """
        image = self.image
        at = image_origin(image)
        lines: list[str] = []
        env = {**_layer_env(self.layers), **{k: (v, at("env", k)) for k, v in image.env.items()}}
        if env:
            lines.append("ENV " + " ".join(
                key_value(k, v, ENV_NAME, "environment variable name", origin, origin)
                for k, (v, origin) in sorted(env.items())))
        if image.workdir:
            lines.append(f"WORKDIR {instruction_arg(image.workdir, at('workdir'))}")
        user = image.user or self.inherited_user
        if user and (image.user or self.layers):
            origin = at("user") if image.user else self.user_origin or at("user")
            checked_name(user, USER_NAME, origin, "user")
            lines.append(f"USER {instruction_arg(user, origin)}")
        if image.entrypoint is not None:
            lines.append(f"ENTRYPOINT {json_args(image.entrypoint, at('entrypoint'))}")
        if image.cmd is not None:
            lines.append(f"CMD {json_args(image.cmd, at('cmd'))}")
        lines.append("LABEL " + " ".join(
            key_value(k, v, LABEL_KEY, "label key", _label_origin(image, k),
                      _label_origin(image, k)) for k, v in sorted(self.labels.items())))
        return [check_line_length(line, at(_CONFIG_KEYS[line.split(" ", 1)[0]]))
                for line in lines]


_CONFIG_KEYS = {"ENV": "env", "LABEL": "labels", "WORKDIR": "workdir", "USER": "user",
                "ENTRYPOINT": "entrypoint", "CMD": "cmd"}


def image_origin(image: Image) -> Callable[..., Origin]:
    """Origins of the image file's values, by key path."""
    return lambda *key: Origin(image.doc, key)


def _label_origin(image: Image, key: str) -> Origin:
    if key in image.labels:
        return Origin(image.doc, ("labels", key))
    if key == DESCRIPTION_LABEL:
        return Origin(image.doc, ("description",))
    return Origin(image.doc, ())


def _layer_env(layers: list[RenderedLayer]) -> dict[str, tuple[str, Origin]]:
    env: dict[str, tuple[str, Origin]] = {}
    for rendered in layers:
        for key, value in (rendered.layer.spec.get("env") or {}).items():
            env[key] = (str(value), Origin(rendered.layer.doc, ("env", key)))
    return env


def local_tag(image: str, platform: Platform, key: str) -> str:
    return f"localhost/lamina/{image}:{platform.arch}-{key.removeprefix('sha256:')[:20]}"


def build_unit(recipe: Recipe, image: Image, platform: Platform, epoch: int,
               parent_key: str | None, external_digest: str | None = None) -> BuildUnit:
    """Render one node; ``parent_key`` is the tree parent's key for this platform."""
    rendered = [render_layer(layer, platform) for layer in image.layers]
    build_args = {
        **{k: str(v) for k, v in (recipe.settings.get("build_args") or {}).items()},
        **image.build_args,
    }
    for arg, value in build_args.items():  # names: the schemas; values reach buildah's argv
        doc = image.doc if arg in image.build_args else recipe.doc
        checked_name(arg, ENV_NAME, Origin(doc, ("build_args", arg)), "build argument name")
        argv(value, Origin(doc, ("build_args", arg)))
    inputs: dict[str, str] = {
        "key format": str(KEY_FORMAT),
        "platform": platform.name,
        "timestamp epoch": str(epoch),
        "build args": sha256_data(build_args),
        "image config": sha256_data({
            "env": image.env, "workdir": image.workdir, "user": image.user,
            "entrypoint": image.entrypoint, "cmd": image.cmd, "labels": image.labels,
        }),
        "layer order": sha256_data([r.layer.name for r in rendered]),
    }
    for r in rendered:
        for name, digest in r.inputs.items():
            inputs[f"layer {r.layer.name}: {name}"] = digest
    if image.parent_name is not None:
        assert parent_key is not None
        inputs[f"parent {image.parent_name}"] = parent_key
        parent_ref = local_tag(image.parent_name, platform, parent_key)
    elif image.external is not None:
        digest = external_digest or image.external.digest
        inputs[f"parent {image.external.repository}"] = digest
        parent_ref = f"{image.external.repository}@{digest}"
    else:
        parent_ref = "scratch"
    key = "sha256:" + sha256_data(inputs)
    labels = {**image.labels, KEY_LABEL: key, IMAGE_LABEL: image.name}
    if image.description:
        labels.setdefault(DESCRIPTION_LABEL, image.description)
    labels.setdefault("org.opencontainers.image.title", image.name)
    ancestor = next((recipe.images[a] for a in recipe.ancestors(image.name)
                     if recipe.images[a].user), None)
    unit = BuildUnit(image=image, platform=platform, key=key, inputs=inputs,
                     parent_ref=parent_ref, layers=rendered, build_args=build_args,
                     epoch=epoch, parent_key=parent_key, labels=labels,
                     inherited_user=ancestor.user if ancestor else None,
                     user_origin=Origin(ancestor.doc, ("user",)) if ancestor else None)
    unit.containerfile()  # a value the Containerfile cannot carry is refused now, located
    return unit
