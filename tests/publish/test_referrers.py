"""lamina's reports are OCI 1.1 referrers as a spec-following client finds them, and what
other tools attached to the same image survives every publish.

The reader (``oci_referrers_reader.py``) is written from distribution-spec's text and imports
nothing of lamina. The tag-schema path runs against the real docker-registry (distribution
2.8, no referrers API); the API path against ``referrers_registry.py``, a loopback fake that
stands in only because no registry with the referrers API runs on this machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.core.conftest import CliResult, require_tool
from tests.publish import oci_referrers_reader as oci
from tests.publish.conftest import TlsRegistry
from tests.publish.referrers_registry import ReferrersRegistry

REPORT = "application/vnd.dev.lamina.report.v1"  # lamina's artifactType
SIGNATURE = "application/vnd.example.signature.v1+json"  # "another tool"
CDX = "application/vnd.cyclonedx+json"
PACKAGES = "application/vnd.dev.lamina.packages.v1+json"


def manifest_puts(registry: TlsRegistry) -> int:
    """Manifest PUTs the registry accepted, from its access log."""
    text = registry.access_log.read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if '"PUT /v2/' in line and "/manifests/" in line and '" 201 ' in line)


def sign(registry: oci.Registry, name: str, subject: dict[str, Any], who: str) -> str:
    return oci.push_artifact(registry, name, subject, SIGNATURE, f"sig by {who}".encode(),
                             "application/octet-stream", {"org.example.signer": who})


def lamina_report(registry: oci.Registry, name: str, subject: str
                  ) -> tuple[list[dict[str, Any]], str, dict[str, Any], dict[str, Any]]:
    """(referrers, how found, the SBOM and the package manifest of lamina's one report)."""
    listed, how = oci.list_referrers(registry, name, subject)
    assert all(d.get("artifactType") for d in listed), listed
    reports = [d for d in listed if d["artifactType"] == REPORT]
    assert len(reports) == 1, listed
    artifact, _, _ = oci.manifest(registry, name, reports[0]["digest"])
    assert artifact["subject"]["digest"] == subject
    assert artifact["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert reports[0]["annotations"] == artifact["annotations"]
    layers = {layer["mediaType"]: layer["digest"] for layer in artifact["layers"]}
    sbom = json.loads(oci.blob(registry, name, layers[CDX]))
    packages = json.loads(oci.blob(registry, name, layers[PACKAGES]))
    return listed, how, sbom, packages


def assert_valid_cyclonedx(sbom: dict[str, Any]) -> None:
    """CycloneDX's own JSON schema validator (cyclonedx-python-lib), strict: no property the
    1.5 schema does not define."""
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(sbom))
    assert errors is None, errors


def foreign(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in listed if d["artifactType"] != REPORT]


def test_tag_schema_index_keeps_other_tools_referrers_and_a_rerun_puts_nothing(
        lamina: Callable[..., CliResult], built_tiny: Path, tls_registry: TlsRegistry) -> None:
    root = str(built_tiny)
    host = tls_registry.host
    reg = oci.Registry(f"https://{host}", str(tls_registry.cert_dir / "ca.crt"),
                       (tls_registry.username, tls_registry.password))
    opts = ["--cert-dir", str(tls_registry.cert_dir), "--authfile", str(tls_registry.authfile)]

    # The same images published to another namespace first: their digests (base has no
    # parent, so nothing in them names the namespace) are what the signer signs.
    staged = lamina("-C", root, "publish", "base", "--to", f"{host}/stage", "--tag", "v1", *opts)
    assert staged.code == 0, staged.out + staged.err
    release = oci.subject(reg, "stage/base", "v1-amd64")
    tags = reg.request("GET", "/v2/stage/base/tags/list").json()["tags"]
    # the key tag, and the tested tag naming the same manifest (publish.tested_tag)
    (key_tag,) = [t for t in tags if t.startswith("lamina-") and "-t" not in t]
    (tested,) = [t for t in tags if t.startswith(f"{key_tag}-t")]
    assert oci.subject(reg, "stage/base", tested) == oci.subject(reg, "stage/base", key_tag)
    key_build = oci.subject(reg, "stage/base", key_tag)

    # BEFORE lamina publishes there: another tool signs the release image, an older lamina
    # left a report entry for it, and for the key-tagged build the old lamina format (the
    # report manifest itself under the referrers tag)
    sig1 = sign(reg, "hep/base", release, "alice")
    stale = oci.push_artifact(reg, "hep/base", release, REPORT, b"old report", PACKAGES,
                              {"dev.lamina.key": "sha256:" + "0" * 64})
    legacy = {"schemaVersion": 2, "mediaType": oci.MANIFEST, "artifactType": REPORT,
              "config": {"mediaType": oci.EMPTY, **oci.push_blob(reg, "hep/base", b"{}")},
              "layers": [{"mediaType": PACKAGES,
                          **oci.push_blob(reg, "hep/base", b"legacy report")}],
              "subject": key_build}
    put = reg.request("PUT", f"/v2/hep/base/manifests/{oci.referrers_tag(key_build['digest'])}",
                      data=json.dumps(legacy).encode(), headers={"Content-Type": oci.MANIFEST})
    assert put.status_code == 201

    first = lamina("-C", root, "publish", "base", "--to", f"{host}/hep", "--tag", "v1", *opts)
    assert first.code == 0, first.out + first.err
    listed, how, sbom, packages = lamina_report(reg, "hep/base", release["digest"])
    assert how == "tag"  # distribution 2.8 has no referrers API
    signatures = foreign(listed)
    assert [d["digest"] for d in signatures] == [sig1]
    assert signatures[0]["annotations"] == {"org.example.signer": "alice"}
    assert stale not in [d["digest"] for d in listed]  # lamina's own earlier entry, replaced
    assert packages["platform"] == "linux/amd64"
    # the SBOM names the image it is attached to, not the build it came from
    assert_valid_cyclonedx(sbom)
    component = sbom["metadata"]["component"]
    assert component["name"] == f"{host}/hep/base"
    assert component["version"] == release["digest"]
    assert "tag=v1-amd64" in component["purl"] and component["purl"].startswith("pkg:oci/base@")

    # the key-tagged build: the old format became an index with the current report, whose
    # SBOM names the key-tagged image
    listed_key, _, sbom_key, _ = lamina_report(reg, "hep/base", key_build["digest"])
    assert foreign(listed_key) == []
    assert sbom_key["metadata"]["component"]["version"] == key_build["digest"]
    assert f"tag={key_tag}" in sbom_key["metadata"]["component"]["purl"]
    assert_valid_cyclonedx(sbom_key)

    # AFTER: a second signature; a republish writes no manifest and keeps both
    sig2 = sign(reg, "hep/base", release, "bob")
    puts = manifest_puts(tls_registry)
    again = lamina("-C", root, "publish", "base", "--to", f"{host}/hep", "--tag", "v1", *opts)
    assert again.code == 0, again.out + again.err
    assert manifest_puts(tls_registry) == puts
    listed_again, _, _, _ = lamina_report(reg, "hep/base", release["digest"])
    assert [d["digest"] for d in foreign(listed_again)] == [sig1, sig2]

    # A referrers tag holding something that is no index is another tool's: lamina does not
    # overwrite it, and says why in one line.
    signature = {**legacy, "artifactType": SIGNATURE, "subject": release,
                 "config": {"mediaType": oci.EMPTY, **oci.push_blob(reg, "other/base", b"{}")},
                 "layers": [{"mediaType": "application/octet-stream",
                             **oci.push_blob(reg, "other/base", b"sig by carol")}]}
    put = reg.request("PUT", f"/v2/other/base/manifests/{oci.referrers_tag(release['digest'])}",
                      data=json.dumps(signature).encode(),
                      headers={"Content-Type": oci.MANIFEST})
    assert put.status_code == 201, put.text
    before = oci.manifest(reg, "other/base", oci.referrers_tag(release["digest"]))[2]
    refused = lamina("-C", root, "publish", "base", "--to", f"{host}/other", "--tag", "v1",
                     *opts)
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "Traceback" not in refused.err
    assert (f"other/base:{oci.referrers_tag(release['digest'])} holds a "
            f"{oci.MANIFEST}, not an image index of referrers; refusing to overwrite it"
            ) in refused.err
    assert oci.manifest(reg, "other/base", oci.referrers_tag(release["digest"]))[2] == before


@pytest.fixture
def api_registry(tmp_path: Path) -> Iterator[ReferrersRegistry]:
    registry = ReferrersRegistry(tmp_path / "api-certs")
    yield registry
    registry.close()


def test_referrers_api_gets_the_referrer_by_digest_and_no_tag(
        lamina: Callable[..., CliResult], built_tiny: Path, api_registry: ReferrersRegistry,
        tmp_path: Path) -> None:
    require_tool("skopeo")
    root = str(built_tiny)
    host = api_registry.host
    reg = oci.Registry(f"https://{host}", str(api_registry.tls_dir / "ca.crt"))
    opts = ["--cert-dir", str(api_registry.tls_dir)]
    staged = lamina("-C", root, "publish", "base", "--to", f"{host}/stage", "--tag", "v1", *opts)
    assert staged.code == 0, staged.out + staged.err
    release = oci.subject(reg, "stage/base", "v1-amd64")
    sig1 = sign(reg, "hep/base", release, "alice")

    first = lamina("-C", root, "publish", "base", "--to", f"{host}/hep", "--tag", "v1", *opts)
    assert first.code == 0, first.out + first.err
    listed, how, sbom, _ = lamina_report(reg, "hep/base", release["digest"])
    assert how == "api"
    assert [d["digest"] for d in foreign(listed)] == [sig1]
    assert sbom["metadata"]["component"]["version"] == release["digest"]
    assert_valid_cyclonedx(sbom)
    only_reports, _ = oci.list_referrers(reg, "hep/base", release["digest"], REPORT)
    assert [d["artifactType"] for d in only_reports] == [REPORT]
    # with the API, referrers go by digest only: no referrers tag was ever written
    puts = api_registry.manifest_puts()
    assert not [p for p in puts if p.rsplit("/", 1)[1].startswith("sha256-")], puts
    report_digest = only_reports[0]["digest"]
    assert f"/v2/hep/base/manifests/{report_digest}" in puts

    again = lamina("-C", root, "publish", "base", "--to", f"{host}/hep", "--tag", "v1", *opts)
    assert again.code == 0, again.out + again.err
    assert api_registry.manifest_puts() == puts

    # Another machine finds the node by key and fetches it with its reports, through the API.
    fresh = tmp_path / "fresh"
    shutil.copytree(built_tiny, fresh, ignore=shutil.ignore_patterns(".lamina"))
    fetched = lamina("-C", str(fresh), "build", "--push", "--to", f"{host}/hep", "--tag", "v1",
                     "base", "--json", *opts)
    assert fetched.code == 0, fetched.out + fetched.err
    assert [n["outcome"] for n in fetched.json()["nodes"]] == ["up-to-date"]
    stored = json.loads((fresh / ".lamina/store/lamina/base/amd64.cdx.json").read_text())
    assert stored["bomFormat"] == "CycloneDX"
    assert stored["metadata"]["component"]["purl"].count("tag=lamina-") == 1
    assert api_registry.manifest_puts() == puts


def test_referrers_api_pages_are_all_read_and_their_number_and_origin_bounded(
        lamina: Callable[..., CliResult], built_tiny: Path, tmp_path: Path) -> None:
    """distribution-spec "Listing Referrers": a registry MAY page the list with a ``Link``
    header. lamina reads every page (its report, listed last, is found: a rerun pushes
    nothing), follows at most 20, and only on the registry's own origin."""
    registry = ReferrersRegistry(tmp_path / "paged-certs", page_size=1)
    try:
        root = str(built_tiny)
        host = registry.host
        reg = oci.Registry(f"https://{host}", str(registry.tls_dir / "ca.crt"))
        opts = ["--cert-dir", str(registry.tls_dir)]

        def publish(namespace: str) -> CliResult:
            return lamina("-C", root, "publish", "base", "--to", f"{host}/{namespace}",
                          "--tag", "v1", *opts)

        assert publish("stage").code == 0
        release = oci.subject(reg, "stage/base", "v1-amd64")
        signatures = [sign(reg, "hep/base", release, who) for who in ("alice", "bob")]
        first = publish("hep")
        assert first.code == 0, first.out + first.err
        listed, how = oci.list_referrers(reg, "hep/base", release["digest"])
        assert how == "api" and len(listed) == 3  # three pages of one
        assert [d["digest"] for d in foreign(listed)] == signatures
        assert listed[-1]["artifactType"] == REPORT

        puts = registry.manifest_puts()
        again = publish("hep")
        assert again.code == 0, again.out + again.err
        assert registry.manifest_puts() == puts

        registry.endless_pages = True
        endless = publish("hep")
        assert endless.code == 1 and endless.err.count("\n") == 1, endless.err
        assert endless.err.startswith(f"lamina: error: {host}: referrers of sha256:")
        assert endless.err.endswith(" in hep/base: more than 20 pages\n")

        registry.endless_pages = False
        registry.next_elsewhere = "127.0.0.1:9"  # a page on another port: not followed
        elsewhere = publish("hep")
        assert elsewhere.code == 1 and elsewhere.err.count("\n") == 1, elsewhere.err
        assert elsewhere.err.startswith(f"lamina: error: {host}: referrers of sha256:")
        assert elsewhere.err.endswith(" page to another origin\n")
        assert registry.manifest_puts() == puts
    finally:
        registry.close()
