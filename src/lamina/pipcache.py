"""lamina's wheel cache for pip layers: outside every layer, shared by every build of a state
directory, so a one-package lock change downloads one package.

The cache is a host directory, ``<state>/cache/pip`` (:func:`lamina.builders.base.pip_cache`),
holding the wheels pip downloaded (``wheels/``). A pip step's build context names it by a
symlink (:data:`LINK`), and the step bind-mounts it read-write at :data:`MOUNT`: buildah
1.28 joins a bind source to the context directory (``GetBindMount`` in
internal/parse/parse.go) and the kernel's mount follows the link, so the cache is never part
of the step's layer; buildah removes the mount point it made under ``/run`` afterwards, and
the hygiene check refuses a layer that holds anything at that path (:mod:`lamina.hygiene`).

A wheel directory rather than pip's HTTP cache, because pip caches a response only when the
server's ``Cache-Control`` allows it, and an intercepting site proxy may strip that header
(the one this project is tested behind does). The step first installs from the cache alone
(``--no-index --find-links``, every file checked against the lock's hashes as a download
would be); only when a wheel is missing does it download the lock's wheels into the cache,
which keeps those already there ("File was already downloaded", after checking their hash),
under a ``flock`` on the cache so that concurrent steps never read a wheel half written,
and installs from the cache again. The installed files are the same as from the index: the
same wheels, verified by the same hashes.

A build of the rendered Containerfile that does not mount the cache (no :data:`MOUNT`
directory) installs from the index with ``--no-cache-dir``, as before the cache existed.
"""

from __future__ import annotations

MOUNT = "/run/lamina-pip-cache"
LINK = ".lamina-pip-cache"
WHEELS = f"{MOUNT}/wheels"

# flock(2) the cache, then run the rest of argv: Python is in every image with a pip layer
_LOCKED = ("import fcntl, subprocess, sys; f = open(sys.argv[1], 'a'); "
           "fcntl.flock(f, fcntl.LOCK_EX); sys.exit(subprocess.call(sys.argv[2:]))")


def mount_flag() -> str:
    """The pip step's ``RUN --mount`` for the cache."""
    return f"--mount=type=bind,source={LINK},target={MOUNT},rw"


def install_script(python: str, pip: str, flags: str, lock: str) -> str:
    """Shell text installing ``lock`` with ``pip`` (``python -m pip``, maybe ``--python
    VENV``), through the cache when it is mounted. Every argument is already a shell word."""
    install = f"{pip} install {flags}"
    cached = f"{install} --no-index --find-links {WHEELS} -r {lock}"
    download = (f'{python} -c "{_LOCKED}" {MOUNT}/.lock {pip} download --require-hashes '
                f"--no-deps --dest {WHEELS} -r {lock}")
    # Each fallible step ends the RUN on failure by itself ("|| exit"): in `a || { b && c; }`
    # a failing b would only make the group fail, and set -e does not apply to a compound
    # command whose status comes from a command it ignored (POSIX sh, "set -e"), so the step
    # would go on and commit a layer without the packages.
    return (f"if [ -d {MOUNT} ]; then {cached} 2>/dev/null || {{ echo 'lamina: downloading "
            f"the wheels the pip cache lacks'; {download} || exit $?; {cached} || exit $?; "
            f"}}; else {install} --no-cache-dir -r {lock}; fi")
