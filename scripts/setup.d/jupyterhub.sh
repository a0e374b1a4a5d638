#!/usr/bin/env bash
# JupyterHub peers for tests/jupyterhub: the hub and DockerSpawner in the project venv (.venv),
# configurable-http-proxy from npm in a project-local prefix (.tools/chp), idempotently.
# The hub's version is pinned to the jupyterhub in tests/trees/notebook's lock: the hub and
# jupyterhub-singleuser in the image should be the same release (a mismatch only warns, but
# logins can then loop).
# configurable-http-proxy 5.3.0 needs commander 15 (Node >= 22.12); 5.2.0 is the newest whose
# dependencies all declare Node 20, which is what Debian bookworm's machines here run.
set -euo pipefail
cd "$(dirname "$0")/../.."

JUPYTERHUB_VERSION=6.1.1
DOCKERSPAWNER_VERSION=14.0.0
CHP_VERSION=5.2.0

[ -x .venv/bin/python ] || { echo "setup.d/jupyterhub: .venv missing; run scripts/setup" >&2; exit 1; }

installed() {  # installed <dist> <version>: is exactly that version in .venv?
  [ "$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null)" = "$2" ]
}
if ! installed jupyterhub "$JUPYTERHUB_VERSION" || ! installed dockerspawner "$DOCKERSPAWNER_VERSION"; then
  echo "setup: installing jupyterhub $JUPYTERHUB_VERSION, dockerspawner $DOCKERSPAWNER_VERSION into .venv"
  .venv/bin/pip install -q "jupyterhub==$JUPYTERHUB_VERSION" "dockerspawner==$DOCKERSPAWNER_VERSION"
fi

chp=.tools/chp/node_modules/configurable-http-proxy
if [ "$(node -p "require('./$chp/package.json').version" 2>/dev/null)" != "$CHP_VERSION" ]; then
  command -v npm >/dev/null || { echo "setup.d/jupyterhub: npm and Node >= 20 are required" >&2; exit 1; }
  echo "setup: installing configurable-http-proxy $CHP_VERSION into .tools/chp"
  mkdir -p .tools/chp
  npm install --prefix .tools/chp --no-fund --no-audit --silent "configurable-http-proxy@$CHP_VERSION"
fi
.tools/chp/node_modules/.bin/configurable-http-proxy --version >/dev/null
