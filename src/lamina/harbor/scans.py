"""Harbor vulnerability scans: report types, severities, and the summary lamina prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lamina.errors import UsageError

# Report MIME types Harbor's scanners produce; asked for explicitly so older scanners answer too.
VULN_REPORT_TYPES = ("application/vnd.security.vulnerability.report; version=1.1",
                     "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0")
SEVERITIES = ("Critical", "High", "Medium", "Low", "Unknown", "None")
# Scan job states (src/jobservice/job/status.go); anything else ends the poll.
SCAN_RUNNING = ("Pending", "Scheduled", "Running")

@dataclass(frozen=True)
class ScanSummary:
    reference: str  # project/repository:tag or @digest
    digest: str
    status: str
    severity: str
    counts: dict[str, int]
    total: int
    fixable: int
    scanner: str

    def at_least(self, severity: str) -> int:
        """Vulnerabilities at ``severity`` or worse (for ``--fail-on``)."""
        ranked = SEVERITIES[: SEVERITIES.index(severity) + 1]
        return sum(self.counts.get(level, 0) for level in ranked)


def reference_suffix(reference: str) -> str:
    return f"@{reference}" if ":" in reference else f":{reference}"


def summarize(ref_text: str, digest: str, report: Mapping[str, Any]) -> ScanSummary:
    summary = report.get("summary") or {}
    counts = {str(k): int(v) for k, v in (summary.get("summary") or {}).items()}
    scanner = report.get("scanner") or {}
    scanner_text = " ".join(str(scanner[k]) for k in ("name", "version") if scanner.get(k))
    return ScanSummary(reference=ref_text, digest=digest,
                       status=str(report.get("scan_status", "")),
                       severity=str(report.get("severity") or "None"), counts=counts,
                       total=int(summary.get("total") or 0),
                       fixable=int(summary.get("fixable") or 0), scanner=scanner_text)


def parse_reference(text: str, url: str) -> tuple[str, str, str]:
    """``[host/]project/repo[/more]:tag`` or ``...@sha256:...`` -> (project, repo, ref)."""
    host = urlsplit(url).netloc
    rest = text[len(host) + 1:] if host and text.startswith(host + "/") else text
    if "@" in rest:
        name, ref = rest.split("@", 1)
    else:
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon <= slash:
            raise UsageError(f"'{text}': expected PROJECT/REPOSITORY:TAG or "
                             f"PROJECT/REPOSITORY@sha256:DIGEST")
        name, ref = rest[:colon], rest[colon + 1:]
    project, _, repo = name.partition("/")
    if not project or not repo or not ref:
        raise UsageError(f"'{text}': expected PROJECT/REPOSITORY:TAG or "
                         f"PROJECT/REPOSITORY@sha256:DIGEST")
    return project, repo, ref
