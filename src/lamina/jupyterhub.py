"""Digest-pinned images for JupyterHub admins: z2jh values and a KubeSpawner profile list.

Admins want "the newest tested notebook image", but a tag can move under a running hub;
a digest cannot. Images opt in with a ``jupyterhub:`` section in their image.yaml, and only
published images are offered, pinned by the index digest lamina pushed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.errors import UsageError
from lamina.recipe import Recipe
from lamina.store import Store


@dataclass(frozen=True)
class HubImage:
    image: str
    repository: str
    tag: str
    digest: str
    display_name: str
    description: str
    default: bool
    extra: dict[str, Any]

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


def hub_images(recipe: Recipe, store: Store, repository: str | None = None
               ) -> list[HubImage]:
    """The published images marked for JupyterHub. ``repository`` (``REGISTRY/NS``, as
    given to ``lamina publish --to``) picks the publication; an image published in more
    than one place needs it, since a hub must pull from the place its admin chose."""
    wanted = repository.strip("/") if repository else None
    out: list[HubImage] = []
    for name in recipe.order:
        image = recipe.images[name]
        spec = image.extra.get("jupyterhub")
        if spec is None:
            continue
        published = store.read_publications(name)
        if wanted is not None:
            choices = {repo: entry for repo, entry in published.items()
                       if repo == f"{wanted}/{name}"}
        else:
            choices = dict(published)
        if not choices:
            raise UsageError(f"{name} is marked for JupyterHub but has not been published"
                             + (f" to {wanted}" if wanted else "")
                             + "; run lamina publish first")
        if len(choices) > 1:
            places = ", ".join(repo.removesuffix(f"/{name}") for repo in sorted(choices))
            raise UsageError(f"{name} is published in more than one place ({places}); choose "
                             "one with --repository REGISTRY/NS")
        ((repo, entry),) = choices.items()
        extra = {k: spec[k] for k in ("cpu_limit", "mem_limit") if k in spec}
        out.append(HubImage(name, repo, str(entry["tags"][0]), str(entry["index_digest"]),
                            spec.get("display_name", name),
                            spec.get("description", image.description), bool(spec.get("default")),
                            extra))
    return out


def z2jh_values(images: list[HubImage]) -> dict[str, Any]:
    profiles = []
    for hub_image in images:
        profile: dict[str, Any] = {
            "display_name": hub_image.display_name,
            "description": hub_image.description,
            "kubespawner_override": {"image": hub_image.pinned, **hub_image.extra},
        }
        if hub_image.default:
            profile["default"] = True
        profiles.append(profile)
    extra_images = {
        hub_image.image.replace(".", "-"): {"name": hub_image.repository,
                                            "tag": f"{hub_image.tag}@{hub_image.digest}"}
        for hub_image in images
    }
    return {"singleuser": {"profileList": profiles},
            "prePuller": {"extraImages": extra_images}}


def kubespawner_profile_list(images: list[HubImage]) -> str:
    """``c.KubeSpawner.profile_list`` as Python, for hubs configured without Helm."""
    profiles = z2jh_values(images)["singleuser"]["profileList"]
    return f"c.KubeSpawner.profile_list = {profiles!r}\n"


def version_mismatch(hub_version: str, singleuser_version: str) -> str | None:
    """A warning when major versions differ (the hub then only warns, but logins may loop)."""
    if hub_version.split(".")[0] != singleuser_version.split(".")[0]:
        return (f"jupyterhub-singleuser {singleuser_version} in the image does not match the "
                f"hub's {hub_version}: logins can end in redirect loops")
    return None
