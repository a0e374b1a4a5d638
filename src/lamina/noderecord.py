"""A node's record in the store, and the one rule for when to believe it.

The store ref ``<image>-<arch>`` says which image a node is; its record says what was
checked about that image. A node is good (``up-to-date`` in the plan, publishable) only
when all of these hold, and the plan, ``lamina build`` (re-checking under the node lock)
and ``lamina publish`` all ask :func:`check`:

- the ref names a well-formed manifest whose blobs are all present, annotated with the
  unit's key;
- the record is for that key and that manifest digest and says ``verified: true``, which
  only :meth:`lamina.store.Store.promote` writes, last, after every check of the build (or
  the fetch) passed;
- every report the record lists (package manifest, SBOM) matches the digest recorded for it;
- the test results are bound to the same key, the same manifest digest and the hash of the
  current test chain, and passed.

Anything else (an interrupted run, a record left from an earlier key, a report truncated by
a full disk) is not good, and says why.
"""

from __future__ import annotations

import time
from typing import Any

from lamina.hashing import sha256_data
from lamina.ocilayout import StoredImage
from lamina.recipe import TestSpec
from lamina.render import KEY_LABEL, BuildUnit
from lamina.store import Store

GOOD = "good"
UNTESTED = "untested"  # verified build, tests not passed for it
UNVERIFIED = "unverified"  # stored under this key, but not (or no longer) verified
ABSENT = "absent"  # nothing stored for this key


def tests_hash(tests: list[TestSpec]) -> str:
    return sha256_data([[t.origin, t.name, t.run, t.user, list(t.platforms)] for t in tests])


def node_record(unit: BuildUnit, stored: StoredImage) -> dict[str, Any]:
    """What the store records about a node, however it got there (built or fetched): its
    key and named inputs (how the plan says what changed), digests, and own layer sizes."""
    own = stored.layers[-len(unit.layers):] if unit.layers else []
    return {
        "image": unit.name,
        "platform": unit.platform.name,
        "key": unit.key,
        "inputs": unit.inputs,
        "manifest_digest": stored.manifest_digest,
        "config_digest": stored.config_digest,
        "size": sum(int(layer["size"]) for layer in stored.layers),
        "layers": [
            {"name": r.layer.name, "kind": r.layer.kind, "digest": d["digest"],
             "size": int(d["size"])}
            for r, d in zip(unit.layers, own, strict=True)
        ],
    }


def tests_entry(unit: BuildUnit, manifest_digest: str, chain_hash: str, status: str,
                results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Test results as recorded: bound to the key, the manifest digest and the tests."""
    return {"status": status, "key": unit.key, "manifest_digest": manifest_digest,
            "hash": chain_hash, "ran_at": int(time.time()), "results": results, **extra}


def check(store: Store, unit: BuildUnit, chain_hash: str) -> tuple[str, str]:
    """(verdict, reason): GOOD, UNTESTED, UNVERIFIED or ABSENT for ``unit`` in ``store``."""
    stored = store.get(unit.store_ref)
    if stored is None or stored.annotations.get(KEY_LABEL) != unit.key:
        return ABSENT, "not built yet" if stored is None else "stored image has a different key"
    record = store.read_record(unit.name, unit.platform.arch)
    if record.get("key") != unit.key or record.get("manifest_digest") != \
            stored.manifest_digest or record.get("verified") is not True:
        return UNVERIFIED, "stored image was never verified (an interrupted or older run)"
    if not store.has_blobs(stored):
        return UNVERIFIED, "stored image is missing blobs"
    listed = record.get("reports")
    for name in listed if isinstance(listed, dict) else ["manifest.json"]:
        if store.report(unit.name, unit.platform.arch, name) is None:
            return UNVERIFIED, f"report {unit.platform.arch}.{name} is missing or damaged"
    tests = record.get("tests")
    tests = tests if isinstance(tests, dict) else {}
    if tests.get("key") != unit.key or tests.get("manifest_digest") != stored.manifest_digest:
        return UNTESTED, "tests never ran on this build"
    if tests.get("hash") != chain_hash:
        return UNTESTED, "tests changed or never ran"
    if tests.get("status") != "passed":
        return UNTESTED, f"tests {tests.get('status', 'not run')}"
    return GOOD, ""
