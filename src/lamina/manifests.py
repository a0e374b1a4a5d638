"""What is inside each image: packages, sizes, an SBOM, and the release-notes diff.

Analysts ask "which numpy is in the new image?" and facility admins ask "what changed since
last month?". Both are answered from a manifest collected inside the built image (dpkg and
pip report what is really installed, not what the recipe intended) and kept per key, so any
two builds can be compared later. The store writes the reports together with the node's
record (:meth:`lamina.store.Store.promote`), which holds their digests.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from lamina.errors import ToolError
from lamina.noderecord import node_record
from lamina.ocilayout import StoredImage
from lamina.render import BuildUnit

# The deb part reads dpkg's database: through dpkg-query when the image has it, else (an
# image with the database but without dpkg, e.g. a debs rootfs of a few packages, or a
# distroless-style image) the status file itself, parsed with sh builtins only (read, case,
# printf), since such an image may have no awk or sed. Each line: name, version, size and
# the package's state, which dpkg-query(1) calls db:Status-Status (the third word of the
# Status field; dpkg 1.17.11 and later, older ones print nothing there).
_DPKG_QUERY = ("dpkg-query -W -f='deb\\t${Package}\\t${Version}\\t${Installed-Size}"
               "\\t${db:Status-Status}\\n'")
_EMIT = ('[ -n "$p" ] && printf \'deb\\t%s\\t%s\\t%s\\t%s\\n\' "$p" "$v" "$i" "${s##* }"; '
         "p=; v=; s=; i=")
_STATUS_FILE = (
    "p=; v=; s=; i=; while IFS= read -r l || [ -n \"$l\" ]; do case \"$l\" in "
    "'Package: '*) p=${l#Package: };; 'Version: '*) v=${l#Version: };; "
    "'Status: '*) s=${l#Status: };; 'Installed-Size: '*) i=${l#Installed-Size: };; "
    f"'') {_EMIT};; esac; done < /var/lib/dpkg/status; {_EMIT}"
)
PROBE = (
    f"if command -v dpkg-query >/dev/null 2>&1; then {_DPKG_QUERY} "
    "|| printf 'probe-error\\tdpkg-query exited with %s\\n' $?; "
    f"elif [ -r /var/lib/dpkg/status ]; then {_STATUS_FILE}; fi; "
    "for py in python3 /usr/local/bin/python3; do if command -v $py >/dev/null 2>&1; then "
    "$py -m pip list --format json --disable-pip-version-check 2>/dev/null "
    "| sed 's/^/pip\\t/'; break; fi; done; true"
)
# Package states in which no file of the package is on disk ("Package states" in dpkg(1),
# man/dpkg.pod of github:guillemj/dpkg); any other state
# (installed, unpacked, half-configured, triggers-*) has files in the image.
ABSENT_STATES = frozenset({"not-installed", "config-files"})


def parse_probe(output: str) -> dict[str, dict[str, str]]:
    debs: dict[str, str] = {}
    pips: dict[str, str] = {}
    for line in output.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "probe-error":  # an unreadable database: no package list is better
            raise ToolError(f"the package probe: {rest.strip()[:80]} in the image (is its "
                            "/var/lib/dpkg/status damaged?); its package list is unknown")
        if kind == "deb":
            fields = rest.split("\t")
            state = fields[3].strip() if len(fields) > 3 else ""
            if len(fields) >= 2 and fields[0] and state not in ABSENT_STATES:
                debs[fields[0]] = fields[1]
        elif kind == "pip" and rest.strip().startswith("["):
            try:
                items = json.loads(rest)
            except json.JSONDecodeError:
                raise ToolError(f"pip list printed something that is not JSON: "
                                f"{rest.strip()[:80]!r}") from None
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "name" in item and "version" in item:
                    pips[str(item["name"]).lower()] = str(item["version"])
    return {"deb": dict(sorted(debs.items())), "pip": dict(sorted(pips.items()))}


def build_manifest(unit: BuildUnit, stored: StoredImage, packages: dict[str, dict[str, str]]
                   ) -> dict[str, Any]:
    """The package manifest of the image about to be stored (``stored`` is staged)."""
    record = node_record(unit, stored)
    return {
        "image": unit.name,
        "platform": unit.platform.name,
        "key": unit.key,
        "manifest_digest": stored.manifest_digest,
        "size": record["size"],
        "layers": record["layers"],
        "packages": packages,
    }


def markdown(manifest: dict[str, Any]) -> str:
    lines = [f"# {manifest['image']} ({manifest['platform']})", "",
             f"- key: `{manifest['key']}`", f"- digest: `{manifest['manifest_digest']}`",
             f"- compressed size: {manifest['size']} bytes", "", "| layer | kind | size |",
             "|---|---|---|"]
    lines += [f"| {layer['name']} | {layer['kind']} | {layer['size']} |"
              for layer in manifest["layers"]]
    for kind in ("pip", "deb"):
        packages = manifest["packages"].get(kind, {})
        if packages:
            lines += ["", f"## {kind} packages ({len(packages)})", "", "| package | version |",
                      "|---|---|"]
            lines += [f"| {name} | {version} |" for name, version in packages.items()]
    return "\n".join(lines) + "\n"


def _purl_part(text: str) -> str:
    """A purl name, version or qualifier value, percent-encoded as the purl spec asks
    (package-url/purl-spec ``docs/standard/characters-and-encoding.md``): alphanumerics,
    ``.-_~`` and the colon are never encoded (a Debian epoch stays ``1:``), everything else
    is (``+`` of a Debian version is ``%2B``)."""
    return quote(text, safe=".-_~:")


def cyclonedx(manifest: dict[str, Any]) -> dict[str, Any]:
    """A CycloneDX 1.5 SBOM of the built image; its serial number derives from the key, so
    it is reproducible. Its ``metadata.component`` names the build (image name, manifest
    digest); what is attached to a published image names that image instead
    (:func:`sbom_for_subject`)."""
    arch = manifest["platform"].split("/")[1]
    components = [
        {"type": "library", "name": name, "version": version,
         "purl": f"pkg:pypi/{_purl_part(name)}@{_purl_part(version)}"}
        for name, version in manifest["packages"].get("pip", {}).items()
    ] + [
        {"type": "library", "name": name, "version": version,
         "purl": f"pkg:deb/debian/{_purl_part(name)}@{_purl_part(version)}?arch={arch}"}
        for name, version in manifest["packages"].get("deb", {}).items()
    ]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, manifest['key'])}",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": manifest["image"],
                                   "version": str(manifest["manifest_digest"])}},
        "components": components,
    }


def sbom_for_subject(sbom: bytes, reference: str, digest: str, platform: str) -> bytes:
    """The node's SBOM as attached to the published image ``reference`` (``registry/ns/
    image:tag``) with manifest ``digest``: ``metadata.component`` names that image (its
    repository, digest, and an OCI purl with repository, tag and arch), not the build it
    was collected from, and the serial number derives from the image, so every attached
    SBOM has its own and a republish makes the same bytes."""
    document = json.loads(sbom)
    repository, _, tag = reference.rpartition(":")
    name = repository.rsplit("/", 1)[-1]
    arch = platform.split("/")[1] if "/" in platform else platform
    purl = (f"pkg:oci/{_purl_part(name)}@{_purl_part(digest)}?arch={arch}"
            f"&repository_url={quote(repository, safe='/.-_~:')}&tag={_purl_part(tag)}")
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"{reference}@{digest}")
    document["serialNumber"] = f"urn:uuid:{serial}"
    document["metadata"] = {**document.get("metadata", {}), "component": {
        "type": "container", "bom-ref": f"{repository}@{digest}", "name": repository,
        "version": digest, "purl": purl}}
    return (json.dumps(document, indent=2) + "\n").encode()


def reports(manifest: dict[str, Any]) -> dict[str, bytes]:
    """The node's report files by name (see :data:`lamina.store.REPORTS`): JSON, Markdown and
    SBOM. The store writes them with the node's record, which holds their digests."""
    return {
        "manifest.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
        "manifest.md": markdown(manifest).encode(),
        "cdx.json": (json.dumps(cyclonedx(manifest), indent=2) + "\n").encode(),
    }


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Release notes: package additions, removals, version changes, size change."""
    lines: list[str] = []
    for kind in ("pip", "deb"):
        before = old["packages"].get(kind, {})
        after = new["packages"].get(kind, {})
        for name in sorted(set(before) | set(after)):
            if name not in before:
                lines.append(f"+ {kind} {name} {after[name]}")
            elif name not in after:
                lines.append(f"- {kind} {name} {before[name]}")
            elif before[name] != after[name]:
                lines.append(f"~ {kind} {name} {before[name]} -> {after[name]}")
    if old.get("size") != new.get("size"):
        delta = int(new.get("size", 0)) - int(old.get("size", 0))
        lines.append(f"size {old.get('size')} -> {new.get('size')} bytes ({delta:+d})")
    return lines
