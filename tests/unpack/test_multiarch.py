"""The sync branches: what DUCC converts and links from an index or a plain manifest.

Expected values come from DUCC's source in cvmfs/cvmfs (it does not run here):
- ducc/lib/image.go GetManifestList / FetchManifestList2: a plain manifest is one entry with
  no architecture; an index keeps its entries only when it has more than one, minus
  ``unknown`` ones; GetVariantSymlinkTarget: ``../…/.multiarch/$(CVMFS_ARCH:-amd64)/<public>``.
- ducc/lib/conversion.go filterManifestList: without --multi-arch (the master branch) only the
  amd64 entry; ConvertWishFlat: with it, ``.multiarch/<arch>[:<variant>]/<public>`` per entry,
  then the variant symlink at the public path; archAliases / createMultiarchAliasSymlinks:
  x86_64 and x86-64 -> amd64, aarch64 -> arm64 or arm64:v8, arm64 -> arm64:v8, armhf -> arm,
  armel -> arm:v6, i386 -> 386, each only when a candidate directory exists.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import TREES, CliResult
from tests.unpack.oci import INDEX, Layout, f, gz, tar_bytes

Lamina = Callable[..., CliResult]
NAME = "registry.example.org/hep/analysis:v1"
UNAME = {"x86_64": "amd64", "aarch64": "arm64"}


def make_index(root: Path, *, with_arm_v6: bool = False) -> dict[str, str]:
    layout = Layout(root)
    amd = layout.image([gz(tar_bytes([f("arch", "amd64")]))])
    arm = layout.image([gz(tar_bytes([f("arch", "arm64")]))], arch="arm64", variant="v8")
    attestation = layout.image([gz(tar_bytes([f("sbom.json", "{}")]))], arch="unknown")
    entries = [
        (amd[0], amd[1], {"os": "linux", "architecture": "amd64"}),
        (arm[0], arm[1], {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        (attestation[0], attestation[1], {"os": "unknown", "architecture": "unknown"})]
    configs = {"amd64": amd[2], "arm64:v8": arm[2], "unknown": attestation[2]}
    if with_arm_v6:
        v6 = layout.image([gz(tar_bytes([f("arch", "arm")]))], arch="arm", variant="v6")
        entries.append((v6[0], v6[1], {"os": "linux", "architecture": "arm", "variant": "v6"}))
        configs["arm:v6"] = v6[2]
    digest, size = layout.index(entries)
    layout.tag("multi", digest, size, INDEX)
    return configs


def flat_rel(config: str) -> str:
    hexpart = config.split(":")[1]
    return f".flat/{hexpart[:2]}/{hexpart}"


def flats(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".flat/*/*"))


def test_master_branch_links_the_amd64_flat_and_writes_no_multiarch(
        lamina: Lamina, tmp_path: Path) -> None:
    configs = make_index(tmp_path / "layout")
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out), "--name", NAME,
                    "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["branch"] == "master" and data["variant_target"] is None
    assert [f["platform"] for f in data["flats"]] == ["amd64"]
    assert flats(out) == [configs["amd64"].split(":")[1]]  # filterManifestList: amd64 only
    assert not (out / ".multiarch").exists()
    public = out / NAME
    assert os.readlink(public) == "../../" + flat_rel(configs["amd64"])
    assert (public / "arch").read_text() == "amd64"

    human = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out), "--name", NAME)
    assert human.code == 0, human.err
    assert "(branch master: DUCC without --multi-arch)" in human.out


def test_multiarch_branch_writes_every_platform_the_alias_table_and_the_variant_link(
        lamina: Lamina, tmp_path: Path) -> None:
    configs = make_index(tmp_path / "layout", with_arm_v6=True)
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out), "--name", NAME,
                    "--branch", "multiarch", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert sorted(f["platform"] for f in data["flats"]) == ["amd64", "arm64:v8", "arm:v6"]
    assert not (out / flat_rel(configs["unknown"])).exists()  # attestation dropped
    for arch in ("amd64", "arm64:v8", "arm:v6"):
        link = out / ".multiarch" / arch / NAME
        assert os.readlink(link) == "../../../../" + flat_rel(configs[arch])
        assert (link / "arch").read_text() == arch.split(":")[0]
    multiarch = out / ".multiarch"
    assert os.readlink(multiarch / "x86_64") == "amd64"
    assert os.readlink(multiarch / "x86-64") == "amd64"
    assert os.readlink(multiarch / "arm64") == "arm64:v8"
    assert os.readlink(multiarch / "armel") == "arm:v6"  # not "arm": DUCC's own table
    assert os.path.realpath(multiarch / "aarch64") == str((multiarch / "arm64:v8").resolve())
    assert not (multiarch / "armhf").is_symlink()  # its candidate "arm" does not exist
    assert not (multiarch / "i386").is_symlink()
    assert data["variant_target"] == f"../../.multiarch/$(CVMFS_ARCH:-amd64)/{NAME}"
    machine = platform.machine()
    assert data["cvmfs_arch"] == machine and data["resolves"] is True
    public = out / NAME
    assert os.readlink(public) == f"../../.multiarch/{machine}/{NAME}"
    assert (public / "arch").read_text() == UNAME[machine]


def test_one_entry_index_is_served_by_neither_branch(lamina: Lamina, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    amd = layout.image([gz(tar_bytes([f("arch", "amd64")]))])
    digest, size = layout.index([(amd[0], amd[1], {"os": "linux", "architecture": "amd64"})])
    layout.tag("one", digest, size, INDEX)
    for branch in ("master", "multiarch"):
        out = tmp_path / f"out-{branch}"
        result = lamina("unpack", f"oci:{tmp_path / 'layout'}:one", str(out), "--name", NAME,
                        "--branch", branch)
        assert result.code == 1
        assert result.err.strip().splitlines() == [
            f"lamina: error: oci:{tmp_path / 'layout'}:one is an image index with one entry: "
            f"DUCC serves nothing at {NAME} for it (ducc/lib/image.go FetchManifestList2 keeps "
            "an index's entries only when it has more than one); publish that entry's "
            "manifest itself under the tag"]
        assert flats(out) == []


def test_plain_manifest_on_each_branch(lamina: Lamina, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    digest, size, config = layout.image([gz(tar_bytes([f("arch", "amd64")]))])
    layout.tag("plain", digest, size)
    master = lamina("unpack", f"oci:{tmp_path / 'layout'}:plain", str(tmp_path / "m"),
                    "--name", NAME, "--json")
    assert master.code == 0, master.err
    assert os.readlink(tmp_path / "m" / NAME) == "../../" + flat_rel(config)

    # multiarch: GetNameWithArch names no .multiarch directory for an entry without
    # architecture, so its flat is linked at the public path, which ConvertWishFlat then
    # replaces with the variant symlink: on that branch a plain manifest leads nowhere
    out = tmp_path / "x"
    multi = lamina("unpack", f"oci:{tmp_path / 'layout'}:plain", str(out), "--name", NAME,
                   "--branch", "multiarch", "--json")
    assert multi.code == 0, multi.err
    assert multi.json()["resolves"] is False
    assert flats(out) == [config.split(":")[1]]
    assert os.readlink(out / NAME) == f"../../.multiarch/{platform.machine()}/{NAME}"
    assert not (out / NAME).exists()
    human = lamina("unpack", f"oci:{tmp_path / 'layout'}:plain", str(out), "--name", NAME,
                   "--branch", "multiarch")
    assert (f"warning: {NAME} leads to no image for CVMFS_ARCH={platform.machine()}: DUCC "
            "writes no .multiarch link for it") in human.out


def test_platform_option_narrows_what_the_branch_serves(lamina: Lamina, tmp_path: Path) -> None:
    configs = make_index(tmp_path / "layout")
    ref = f"oci:{tmp_path / 'layout'}:multi"
    out = tmp_path / "out"
    refused = lamina("unpack", ref, str(out), "--platform", "linux/arm64", "--name", NAME)
    assert refused.code == 2
    assert (f"on the master branch DUCC serves only amd64 of {ref} (ducc/lib/conversion.go "
            "filterManifestList); --branch multiarch previews linux/arm64") in refused.err

    result = lamina("unpack", ref, str(out), "--platform", "linux/arm64", "--name", NAME,
                    "--branch", "multiarch", "--json")
    assert result.code == 0, result.err
    assert [f["platform"] for f in result.json()["flats"]] == ["arm64:v8"]
    assert not (out / flat_rel(configs["amd64"])).exists()
    public = out / NAME
    # expanded as an arm64 client (uname -m aarch64) reads the variant link
    assert os.readlink(public) == f"../../.multiarch/aarch64/{NAME}"
    assert (public / "arch").read_text() == "arm64"

    missing = lamina("unpack", ref, str(out), "--platform", "linux/ppc64le")
    assert missing.code == 2
    assert "has no linux/ppc64le image (it has: amd64, arm64:v8)" in missing.err


def test_branch_defaults_to_the_recipes_cvmfs_branch(lamina: Lamina, tmp_path: Path) -> None:
    make_index(tmp_path / "layout")
    project = tmp_path / "tiny"
    shutil.copytree(TREES / "tiny", project, ignore=shutil.ignore_patterns(".lamina"))
    with (project / "recipe.yaml").open("a") as recipe:
        recipe.write("cvmfs:\n  branch: multiarch\n")
    result = lamina("-C", str(project), "unpack", f"oci:{tmp_path / 'layout'}:multi",
                    str(tmp_path / "out"), "--name", NAME, "--json")
    assert result.code == 0, result.err
    assert result.json()["branch"] == "multiarch"
    assert (tmp_path / "out/.multiarch/arm64:v8" / NAME).is_dir()


def test_a_one_platform_store_image_is_previewed_as_the_manifest_publish_pushes(
        lamina: Lamina, tmp_path: Path) -> None:
    """``lamina publish`` pushes a one-platform image's manifest itself under the tag (DUCC
    serves nothing for a one-entry index, ducc/lib/image.go FetchManifestList2), so the store
    image previews as that manifest: its flat at the public path."""
    store = tmp_path / "store"
    layout = Layout(store)
    amd = layout.image([gz(tar_bytes([f("arch", "amd64")]))])
    layout.tag("app-amd64", amd[0], amd[1])
    built = lamina("unpack", "app", str(tmp_path / "built"), "--store", str(store), "--json")
    assert built.code == 0, built.err
    assert os.readlink(tmp_path / "built/localhost/lamina/app:latest") == (
        "../../" + flat_rel(amd[2]))
