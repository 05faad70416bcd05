#!/usr/bin/env bash
# Install the pinned peers (conformance suite, server-everything, Node 22) with `npm ci`.
# Idempotent: skips when node_modules already matches package.json + package-lock.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp_file=node_modules/.portcullis-install-stamp
stamp="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] \
    && node_modules/.bin/node --version >/dev/null 2>&1; then
    echo "tools/peers: node_modules is current ($(node_modules/.bin/node --version))"
    exit 0
fi

npm ci --no-audit --no-fund
node_modules/.bin/node --version >/dev/null
echo "$stamp" > "$stamp_file"
echo "tools/peers: installed ($(node_modules/.bin/node --version))"
