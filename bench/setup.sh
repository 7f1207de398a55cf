#!/usr/bin/env bash
# Installs what bench/run.py needs beyond the project venv: wrk and the node-oidc-provider
# packages. Idempotent: does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq wrk
fi

if ! command -v node >/dev/null; then
  echo "setup.sh: node and npm are needed for bench/node (node-oidc-provider)" >&2
  exit 1
fi

if [ ! -d node/node_modules ]; then
  (cd node && npm ci --no-audit --no-fund)
fi
