"""Publishing tested images: per-arch images first, then their tags, then the index.

The order is what keeps a tag from ever pointing at something incomplete: every child of an
index is pushed (and tagged ``<tag>-<arch>`` for the grid and CVMFS) before the index that
names it, and the index is pushed under ``<tag>`` last (a single-platform image gets its
per-arch manifest under ``<tag>``, which is what DUCC can serve). Every pushed per-arch
image gets the node's reports attached as an OCI 1.1 referrer
(:mod:`lamina.report_artifact`). Digests are preserved end to end, so a rerun compares
what the registry holds with what the store holds and uploads only the difference. An
index is never assembled with a declared platform missing, and a node whose recorded tests
did not pass for its current key is never published.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lamina.errors import LaminaError, UsageError
from lamina.http import host_port
from lamina.noderecord import GOOD, check, tests_hash
from lamina.ocilayout import OCI_INDEX, OCI_MANIFEST, sha256_digest
from lamina.plan import EXCLUDED, UP_TO_DATE, PlanEntry
from lamina.recipe import Recipe
from lamina.registry_client import RegistryClient
from lamina.render import KEY_LABEL, BuildUnit
from lamina.report_artifact import EMPTY_CONFIG, attach_reports
from lamina.store import Store
from lamina.target import Target, client_for

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
PARENT_KEY = "dev.lamina.parent-key"


class PublishError(LaminaError):
    """An image cannot be published (untested, incomplete) or the registry refused it."""


@dataclass
class PushedTag:
    reference: str
    digest: str
    uploaded: bool


@dataclass
class ImagePublication:
    image: str
    index_digest: str = ""
    tags: list[PushedTag] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    size: int = 0
    reports: dict[str, str] = field(default_factory=dict)  # arch → attached report digest
    retries: int = 0  # requests that had to be repeated (502/503/504, dropped connections)
    bytes_uploaded: int = 0


def release_tags(version: str | None, recipe: Recipe, now: dt.datetime | None = None) -> list[str]:
    """Version tag (flag, CI_COMMIT_TAG, or the exact git tag), then the scheme's extras."""
    tags_cfg: dict[str, Any] = recipe.settings.get("tags") or {}
    version = version or os.environ.get("CI_COMMIT_TAG") or tags_cfg.get("version")
    if not version:
        proc = subprocess.run(["git", "-C", str(recipe.root), "describe", "--tags",
                               "--exact-match"], capture_output=True, text=True, check=False)
        version = proc.stdout.strip() if proc.returncode == 0 else None
    if not version:
        raise UsageError("no release version: pass --tag, set CI_COMMIT_TAG, or tag the commit")
    tags = [version]
    if tags_cfg.get("date"):
        tags.append((now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d"))
    tags += list(tags_cfg.get("extra") or [])
    if tags_cfg.get("latest"):
        tags.append("latest")
    return tags


_SCP_REMOTE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>.+)$")


def source_url(remote: str | None) -> str | None:
    """``org.opencontainers.image.source`` from a git remote or ``CI_PROJECT_URL``: an
    http(s) URL without its userinfo (a CI checkout's remote is
    ``https://gitlab-ci-token:<token>@host/...``), or an SSH remote (``git@host:group/proj.git``,
    ``ssh://git@host:2222/group/proj.git``) as the project's web URL
    ``https://host/group/proj``, the form GitLab gives as ``CI_PROJECT_URL``. Anything else
    (a local path, ``file://``) names nothing a reader of the image can open: None."""
    text = (remote or "").strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        return None
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname:
        host = host_port(parts.hostname, parts.port, parts.scheme)
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.scheme in ("ssh", "git+ssh") and parts.hostname:
        path = parts.path
    else:
        match = _SCP_REMOTE.match(text) if "://" not in text else None
        if match is None:
            return None
        return _web_url(match["host"], "/" + match["path"])
    return _web_url(parts.hostname, path)


def _web_url(host: str, path: str) -> str | None:
    path = path.rstrip("/").removesuffix(".git")
    if not path.strip("/") or "@" in path:
        return None
    return f"https://{host.lower()}/{path.strip('/')}"


def remote_digest(client: RegistryClient, target: Target, reference: str) -> str | None:
    """Digest of what ``reference`` (``registry/namespace/image:tag``) names now, or None."""
    repo, _, tag = reference.rpartition(":")
    return client.manifest_digest(target.path(repo), tag)


def _push(client: RegistryClient, store: Store, digest: str, target: Target, reference: str,
          mount_from: str | None) -> None:
    repo, _, tag = reference.rpartition(":")
    client.push_from_layout(store.root, digest, target.path(repo), tag,
                            target.path(mount_from) if mount_from else None)


def index_bytes(children: list[tuple[PlanEntry, str, int]],
                annotations: dict[str, str]) -> bytes:
    """The multi-arch index of the release children, as pushed under ``<tag>``.

    It is not kept in the store: a ref naming an index resolves to several manifests, which
    umoci (``oci/casext/refname.go`` ResolveReference) calls ambiguous, and the children's
    own refs already hold everything it names; its bytes are a function of the children and
    the release annotations, so a rerun makes the same digest.
    """
    manifests = [{"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                  "platform": {"os": entry.platform.os,
                               "architecture": entry.platform.arch}}
                 for entry, digest, size in children]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
             "annotations": dict(sorted(annotations.items()))}
    return json.dumps(index, separators=(",", ":"), sort_keys=True).encode()


def cache_tag(key: str) -> str:
    """The tag that names a built node by its key, so a registry can answer "already built?".

    Keys cover the platform, so one tag per key is unique across architectures. These tags
    are what ``plan --against`` and ``build --push`` look up; a retention policy should keep
    ``lamina-*`` tags as long as builds may reuse them.
    """
    return "lamina-" + key.removeprefix("sha256:")[:40]


def tested_tag(key: str, tests: str) -> str:
    """The key tag of a node whose tests passed, qualified by those tests' hash
    (:func:`lamina.noderecord.tests_hash` of its test chain, inherited tests included).

    The key covers what is in the image, not the tests run on it: a test added to a parent
    after the key tag was pushed does not change the key. So "already built and tested?" is
    asked of this tag, which names the same manifest as the key tag but exists only for the
    tests that passed on it (the store's record says which); when the tests changed, the
    registry's node is not up to date and is built and tested again, never recorded as
    passing tests it never ran.
    """
    return f"{cache_tag(key)}-t{tests.removeprefix('sha256:')[:16]}"


def _base_annotations(unit: BuildUnit, parent: tuple[str, str] | None) -> dict[str, str]:
    """``base.name``/``base.digest``: the parent this image was built on, as the registry
    holds it (``parent``: its reference and digest there, if it holds it), an external
    parent's reference and digest, else nothing (buildah's ``localhost/lamina/...`` name is
    never published)."""
    image = unit.image
    if image.external is not None:
        digest = unit.inputs.get(f"parent {image.external.repository}", "")
        return {BASE_NAME: image.external.reference, BASE_DIGEST: digest}
    if image.parent_name is not None:
        out = {PARENT_KEY: unit.parent_key or ""}
        if parent is not None:
            out[BASE_NAME], out[BASE_DIGEST] = parent
        return out
    return {}


def published_bases(store: Store, recipe: Recipe, target: Target
                    ) -> dict[tuple[str, str], tuple[str, str]]:
    """Per-arch references and digests of images already published to ``target``."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for name in recipe.images:
        entry = store.read_publications(name).get(target.repository(name))
        if not entry:
            continue
        tag = (entry.get("tags") or [""])[0]
        for arch, digest in (entry.get("children") or {}).items():
            out[(name, arch)] = (f"{target.repository(name)}:{tag}-{arch}", digest)
    return out


def _mount_source(recipe: Recipe, image: str, target: Target) -> str | None:
    """The parent's repository, which holds every layer this image shares with it."""
    parent = recipe.images[image].parent_name
    return target.repository(parent) if parent else None


def push_key_tag(store: Store, entry: PlanEntry, target: Target,
                 build_digest: str | None = None, client: RegistryClient | None = None,
                 mount_from: str | None = None) -> str:
    """Push a built, tested node under its key tag unless it is there, with its reports.

    What goes out is the built manifest with buildah's local ``base.*`` (the
    ``localhost/lamina/...`` name and a digest no registry holds) replaced by the parent's
    key tag and the digest this registry holds for it; config and layers are the build's,
    so the key tag costs one small manifest. Deriving it again from a node fetched back
    from its key tag gives the same bytes. ``build_digest`` is given by a caller that has
    verified the stored build already (:func:`publish_image`); without it it is checked here.
    """
    unit = entry.unit
    assert unit is not None
    record = store.read_record(unit.name, unit.platform.arch)
    if build_digest is None:
        stored = store.get(unit.store_ref)
        if stored is None or stored.annotations.get(KEY_LABEL) != unit.key or \
                record.get("verified") is not True or \
                record.get("manifest_digest") != stored.manifest_digest:
            raise PublishError(f"{unit.store_ref}: not in the store verified with key "
                               f"{unit.key[:19]}")
        build_digest = stored.manifest_digest
    client = client or client_for(target)
    parent = None
    if unit.image.parent_name is not None and unit.parent_key:
        parent_ref = f"{target.repository(unit.image.parent_name)}:{cache_tag(unit.parent_key)}"
        held = remote_digest(client, target, parent_ref)
        parent = (parent_ref, held) if held else None
    digest, size = store.derive(unit.store_ref, f"{unit.store_ref}-key",
                                {**_base_annotations(unit, parent), KEY_LABEL: unit.key},
                                drop=(BASE_NAME, BASE_DIGEST))
    key_ref = f"{target.repository(entry.image)}:{cache_tag(unit.key)}"
    if remote_digest(client, target, key_ref) != digest:
        _push(client, store, digest, target, key_ref, mount_from)
    # the reports travel with the key tag too, so a machine that fetches this node instead
    # of building it gets them back (lamina.against.fetch_into_store); a rerun finds them
    # attached and pushes nothing
    attach_reports(client, store, entry, target.path(target.repository(entry.image)),
                   key_ref, digest, size)
    tests = record.get("tests")
    if isinstance(tests, dict) and tests.get("status") == "passed" and \
            tests.get("key") == unit.key and tests.get("manifest_digest") == build_digest and \
            isinstance(tests.get("hash"), str):
        # last: a node is "built and tested" in the registry only once all of it is there
        tested_ref = f"{target.repository(entry.image)}:{tested_tag(unit.key, tests['hash'])}"
        if remote_digest(client, target, tested_ref) != digest:
            _push(client, store, digest, target, tested_ref, mount_from)
    return key_ref


def publish_image(recipe: Recipe, store: Store, image: str, entries: list[PlanEntry],
                  target: Target, tags: list[str], annotations: dict[str, str],
                  bases: dict[tuple[str, str], tuple[str, str]] | None = None,
                  client: RegistryClient | None = None) -> ImagePublication:
    """Publish one image; ``bases`` maps (image, arch) to its published (reference, digest)
    and is updated, so publishing parents first gives children their ``base.*``."""
    bases = bases if bases is not None else published_bases(store, recipe, target)
    client = client or client_for(target)
    retries_before, bytes_before = client.retries_used, client.bytes_uploaded
    mount_from = _mount_source(recipe, image, target)
    node = recipe.images[image]
    by_platform = {e.platform: e for e in entries if e.image == image}
    # excluded by the recipe or by the plan (no wheel for it): not part of the index
    declared = [p for p in node.platforms if not node.excluded(p) and not (
        p in by_platform and by_platform[p].status == EXCLUDED)]
    built: list[tuple[PlanEntry, str]] = []
    for platform in declared:
        entry = by_platform.get(platform)
        if entry is None or entry.unit is None:
            raise PublishError(f"{image}: {platform} is not in this plan; an index is never "
                               "published with a declared platform missing")
        if entry.status != UP_TO_DATE:
            raise PublishError(f"{image} {platform}: not publishable ({entry.status}: "
                               f"{entry.reason or 'tests not passed'}); run lamina build")
        verdict, why = check(store, entry.unit, tests_hash(recipe.test_chain(image)))
        stored = store.get(entry.unit.store_ref)
        if verdict != GOOD or stored is None:
            raise PublishError(f"{image} {platform}: not publishable ({why}); run lamina build")
        built.append((entry, stored.manifest_digest))
    repo = target.repository(image)
    path = target.path(repo)
    result = ImagePublication(image, platforms=[str(p) for p in declared])
    # 1. per-arch images: the built manifest under its key tag (what plan --against finds),
    #    then a copy annotated for this release under <tag>-<arch>; same config and layers,
    #    so the second push moves one small manifest and no blob.
    children: list[tuple[PlanEntry, str, int]] = []
    for entry, build_digest in built:
        unit = entry.unit
        assert unit is not None
        push_key_tag(store, entry, target, build_digest, client, mount_from)
        release_ref = f"{unit.store_ref}-release"
        # buildah writes its local parent (localhost/lamina/...) as base.*: never publish that
        digest, size = store.derive(unit.store_ref, release_ref, {
            **annotations, **_base_annotations(unit, bases.get((unit.image.parent_name or "",
                                                                 entry.platform.arch))),
            KEY_LABEL: unit.key}, drop=(BASE_NAME, BASE_DIGEST))
        children.append((entry, digest, size))
        for tag in tags:
            reference = f"{repo}:{tag}-{entry.platform.arch}"
            uploaded = remote_digest(client, target, reference) != digest
            if uploaded:
                _push(client, store, digest, target, reference, mount_from)
            result.tags.append(PushedTag(reference, digest, uploaded))
        bases[(image, entry.platform.arch)] = (f"{repo}:{tags[0]}-{entry.platform.arch}",
                                               digest)
        reports = attach_reports(client, store, entry, path,
                                 f"{repo}:{tags[0]}-{entry.platform.arch}", digest, size)
        if reports:
            result.reports[entry.platform.arch] = reports
        record = store.read_record(image, entry.platform.arch)
        result.size += int(record.get("size", 0))
    # 2. <tag> last, so it never names a child that is not there yet. A single-platform
    #    image gets its per-arch manifest itself: DUCC's multi-arch code
    #    (ducc/lib/image.go FetchManifestList2, 2025-26) keeps no entry of a one-entry index,
    #    so ConvertWishFlat (ducc/lib/conversion.go) would publish nothing under <tag>,
    #    while a plain manifest is converted on every DUCC version.
    if len(children) == 1:
        tag_digest = children[0][1]
        tag_type = OCI_MANIFEST
        raw = store.blob_path(tag_digest).read_bytes()
    else:
        raw = index_bytes(children, annotations)
        tag_digest, tag_type = sha256_digest(raw), OCI_INDEX
    # stores written before this kept the index as <image>-index (umoci: "ambiguous")
    store.forget([f"{image}-index"], (sha256_digest(EMPTY_CONFIG),))
    result.index_digest = tag_digest
    for tag in tags:
        reference = f"{repo}:{tag}"
        uploaded = remote_digest(client, target, reference) != tag_digest
        if uploaded:  # every child and blob is there already (step 1)
            client.push_manifest(path, tag, raw, tag_type)
        result.tags.append(PushedTag(reference, tag_digest, uploaded))
    result.retries = client.retries_used - retries_before
    result.bytes_uploaded = client.bytes_uploaded - bytes_before
    store.record_publication(image, repo, {
        # index_digest: what <tag> names (the per-arch manifest of a single-platform image)
        "tags": tags, "index_digest": tag_digest, "media_type": tag_type,
        "platforms": result.platforms,
        "size": result.size,
        "children": {entry.platform.arch: digest for entry, digest, _ in children},
        "keys": {entry.platform.arch: entry.unit.key for entry, _, _ in children
                 if entry.unit is not None},
    })
    return result
