"""A PEP 503 "simple" package index on 127.0.0.1 holding wheels crafted by the test.

The wheels are real zip files with the three files a wheel must carry (PEP 427:
``{name}-{version}.dist-info/METADATA``, ``WHEEL`` and ``RECORD``), so pip reads their
metadata the way it reads any wheel; the index pages are what PEP 503 describes (one page
per normalized project name, one anchor per file, ``#sha256=`` fragments) and what pip's
``index/collector.py`` parses. The server is Python's ``http.server`` in a thread, torn down
by the fixture that starts it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    tag: str = "py3-none-any"
    requires: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.name)}-{self.version}-{self.tag}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def write_wheel(wheel: Wheel, directory: Path) -> Path:
    """A minimal valid wheel: one module plus the dist-info files, with fixed zip times."""
    dist = f"{re.sub(r'[-_.]+', '_', wheel.name)}-{wheel.version}.dist-info"
    module = re.sub(r"[-.]+", "_", wheel.name).lower()
    metadata = (f"Metadata-Version: 2.1\nName: {wheel.name}\nVersion: {wheel.version}\n"
                + "".join(f"Requires-Dist: {req}\n" for req in wheel.requires))
    pure = wheel.tag.endswith("none-any")
    tags = wheel.tag.split("-")
    wheel_file = (f"Wheel-Version: 1.0\nGenerator: lamina-tests\n"
                  f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
                  + "".join(f"Tag: {tags[0]}-{tags[1]}-{plat}\n"
                            for plat in tags[2].split(".")))
    files = {f"{module}/__init__.py": f"__version__ = {wheel.version!r}\n".encode(),
             f"{dist}/METADATA": metadata.encode(),
             f"{dist}/WHEEL": wheel_file.encode()}
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = directory / wheel.filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return path


@dataclass
class WheelIndex:
    root: Path
    url: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    def sha256(self, filename: str) -> str:
        return hashlib.sha256(self.files[filename].read_bytes()).hexdigest()

    def publish(self, wheels: list[Wheel]) -> None:
        """Write the wheels and (re)write every project page and the root page."""
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            self.files[wheel.filename] = write_wheel(wheel, files)
        projects: dict[str, list[str]] = {}
        for filename in self.files:
            projects.setdefault(normalize(filename.split("-")[0]), []).append(filename)
        simple = self.root / "simple"
        for project, names in projects.items():
            page = simple / project
            page.mkdir(parents=True, exist_ok=True)
            anchors = "".join(
                f'<a href="../../files/{html.escape(n)}#sha256={self.sha256(n)}">'
                f"{html.escape(n)}</a>\n" for n in sorted(names))
            (page / "index.html").write_text(
                f"<!DOCTYPE html>\n<html><body>\n{anchors}</body></html>\n")
        (simple / "index.html").write_text(
            "<!DOCTYPE html>\n<html><body>\n"
            + "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
            + "</body></html>\n")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_index(root: Path) -> Iterator[WheelIndex]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends; the ``url`` is the
    ``/simple/`` root a user gives pip as its index URL."""
    index = WheelIndex(root)
    root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_QuietHandler, directory=str(root)))
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
