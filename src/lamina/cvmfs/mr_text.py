"""What lamina writes in the CVMFS merge request: its branch name, title and description
(the published images, their per-arch digests, the wishlist lines added, what DUCC would
refuse among the existing lines). Text only, no GitLab: ``lamina cvmfs mr --dry-run`` prints
the same report without importing the GitLab client (:mod:`lamina.cvmfs.merge_request`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lamina.cvmfs.entries import PlannedEntry, host_notes
from lamina.cvmfs.existing import ExistingLine
from lamina.sizes import human_size

MARKER = "<!-- lamina:cvmfs -->"  # marks lamina's own merge requests among a project's


@dataclass(frozen=True)
class ImageSummary:
    """What the MR description says about one published image repository."""

    image: str
    repository: str
    tags: tuple[str, ...]
    index_digest: str
    platforms: tuple[str, ...]
    size: int
    children: tuple[tuple[str, str], ...]

    @classmethod
    def from_publication(cls, image: str, repository: str, pub: dict[str, Any]
                         ) -> ImageSummary:
        return cls(image, repository, tuple(pub.get("tags") or ()),
                   str(pub.get("index_digest") or ""), tuple(pub.get("platforms") or ()),
                   int(pub.get("size") or 0),
                   tuple(sorted((str(k), str(v)) for k, v in
                                (pub.get("children") or {}).items())))



def branch_name(images: Sequence[str], fallback: str) -> str:
    """``lamina/<image>`` for one image, ``lamina/<recipe name>`` for several; a git ref."""
    name = images[0] if len(images) == 1 else fallback
    return "lamina/" + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "images")


def title_for(summaries: Sequence[ImageSummary]) -> str:
    names = sorted({f"{s.image}:{s.tags[0]}" for s in summaries if s.tags})
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"Add {shown} (lamina)"


def description_for(summaries: Sequence[ImageSummary], planned: Sequence[PlannedEntry],
                    broken: Sequence[ExistingLine] = (), notes: Sequence[str] = ()) -> str:
    lines = ["Images built, tested and published by lamina, proposed for unpacked.cern.ch.",
             "",
             "| image | repository | tags | index digest | platforms | size |",
             "|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.image} | `{s.repository}` | {', '.join(s.tags)} | "
                     f"`{s.index_digest}` | {', '.join(s.platforms)} | {human_size(s.size)} |")
    lines += ["", "Per-architecture images:", ""]
    for s in summaries:
        for arch, digest in s.children:
            lines.append(f"- `{s.repository}` {arch}: `{digest}`")
    lines += ["", "Wishlist lines (the multi-arch tag, and `<tag>-<arch>` for each "
              "architecture):", ""]
    lines += [f"- `{p.url}` → `{p.path}`" for p in planned]
    lines += report_lines(broken, [*host_notes(list(planned)), *notes], markdown=True)
    lines += ["", MARKER]
    return "\n".join(lines) + "\n"


def report_lines(broken: Sequence[ExistingLine], notes: Sequence[str], *, markdown: bool
                 ) -> list[str]:
    """What lamina found in the wishlist besides its own lines: one line per existing line
    DUCC fails on (never changed by lamina), and the notes about the lines it adds."""
    out: list[str] = []
    if broken:
        out += ["", f"Existing wishlist lines DUCC cannot use ({len(broken)}; this merge request "
                    "leaves them as they are):", ""]
        out += [f"- line {b.line}: `` {b.shown()} ``: {b.why}" if markdown else b.report()
                for b in broken]
    if notes and markdown:
        out += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    elif notes:
        out += [f"note: {note}" for note in notes]
    return out if markdown else [line for line in out if line]
