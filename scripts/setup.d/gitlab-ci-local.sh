#!/usr/bin/env bash
# gitlab-ci-local, the peer tests/ci/test_gitlab_ci_local.py runs the generated child pipeline
# with, installed idempotently into the project-local prefix .tools/ (not global, so it never
# clashes with another version on the machine).
#
# Pinned to 4.64.1: later releases are built with Bun and need Node >= 22 (Set.prototype.union)
# without saying so in package.json; 4.64.1 declares node >= 18 and runs on bookworm's Node 20.
# Its shell executor copies job directories with rsync, which a minimal Debian lacks.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=4.64.1
PREFIX=.tools

if ! command -v rsync >/dev/null 2>&1; then
  echo "setup.d/gitlab-ci-local: installing rsync"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends rsync \
    >/dev/null
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup.d/gitlab-ci-local: $tool not found; install Node.js >= 18 with npm" \
         "(Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "setup.d/gitlab-ci-local: Node $(node --version) is too old; gitlab-ci-local" \
       "$VERSION needs >= 18" >&2
  exit 1
fi

bin="$PREFIX/node_modules/.bin/gitlab-ci-local"
installed=""
if [ -x "$bin" ]; then
  installed=$("$bin" --version 2>/dev/null || true)
fi
if [ "$installed" != "$VERSION" ]; then
  echo "setup.d/gitlab-ci-local: installing gitlab-ci-local@$VERSION into $PREFIX/"
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
    "gitlab-ci-local@$VERSION" >/dev/null
  installed=$("$bin" --version)
  if [ "$installed" != "$VERSION" ]; then
    echo "setup.d/gitlab-ci-local: expected $VERSION, got '$installed'" >&2
    exit 1
  fi
fi
mkdir -p "$PREFIX/bin"
ln -sfn ../node_modules/.bin/gitlab-ci-local "$PREFIX/bin/gitlab-ci-local"
