"""A small typed client for the Harbor REST API v2.0: project bootstrap, robots, tag
immutability, retention and vulnerability scans.

Why our own ~400 lines instead of a generated client: the publishing pipeline needs a dozen
endpoints, and the things that break Harbor scripts in the field are exactly the ones a
generic client hides (see ``notes/registries.md``):

* **No cookies.** Harbor answers every API response with a ``sid`` session cookie. A client
  that sends it back "carries a session", and Harbor's CSRF middleware then protects that
  request like a browser's: POST/PUT/PATCH/DELETE without ``X-Harbor-CSRF-Token`` get
  ``403 CSRF token invalid`` (goharbor/harbor#12455, #16744, #15994;
  ``src/server/middleware/csrf/csrf.go``). Basic auth on every request and a cookie jar
  whose policy refuses every cookie keep each call stateless.
* **Double encoding.** A repository name with ``/`` goes into the path encoded twice
  (``a/b`` -> ``a%252Fb``); encoded once, Harbor's router sees extra path segments -> 404.
* **Paging.** Lists come in pages (``page``/``page_size``, at most 100) with ``X-Total-Count``
  and a ``Link: <...>; rel="next"`` header. Harbor writes that link with its query string
  *unescaped* (``src/server/v2.0/handler/base.go``), so a ``+`` in ``q=name=robot$p+ci``
  would come back as a space if the URL were replayed. We take ``rel="next"`` as the signal
  and ask for the next page with our own, correctly encoded parameters.
* **Robot names contain ``$``** (``robot$<project>+<name>``). They are only ever passed as
  Python strings, never through a shell, and Basic credentials are encoded as UTF-8 bytes.

Errors become one-line :class:`~lamina.errors.RegistryError` s naming the operation, the HTTP
status and Harbor's own message (``{"errors":[{"code":..., "message":...}]}``), passed
through :func:`lamina.redact.redact` so a password or robot secret can never leak into them.
"""

from lamina.harbor.client import (
    DEFAULT_RETENTION_CRON,
    DEFAULT_ROBOT_ACCESS,
    SCAN_ROBOT_ACCESS,
    HarborClient,
    ImmutableRule,
    Project,
    Retention,
    Robot,
)
from lamina.harbor.scans import SEVERITIES, ScanSummary, parse_reference, summarize
from lamina.harbor.transport import API, MAX_PAGE_SIZE, encode_repository

__all__ = [
    "API", "DEFAULT_RETENTION_CRON", "DEFAULT_ROBOT_ACCESS", "MAX_PAGE_SIZE",
    "SCAN_ROBOT_ACCESS", "SEVERITIES", "HarborClient", "ImmutableRule", "Project", "Retention",
    "Robot", "ScanSummary", "encode_repository", "parse_reference", "summarize",
]
