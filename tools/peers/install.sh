#!/usr/bin/env bash
# Install the pinned peers: from npm (conformance suite, server-everything, Node 22) with
# `npm ci`, and from PyPI (the official MCP Python SDK, requirements.txt) into the venv
# tools/peers/python. Idempotent: each part is skipped when it already matches its lockfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp_file=node_modules/.portcullis-install-stamp
stamp="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] \
    && node_modules/.bin/node --version >/dev/null 2>&1; then
    echo "tools/peers: node_modules is current ($(node_modules/.bin/node --version))"
else
    npm ci --no-audit --no-fund
    node_modules/.bin/node --version >/dev/null
    echo "$stamp" > "$stamp_file"
    echo "tools/peers: installed ($(node_modules/.bin/node --version))"
fi

py_stamp_file=python/.portcullis-install-stamp
py_stamp="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ -f "$py_stamp_file" && "$(cat "$py_stamp_file")" == "$py_stamp" ]] \
    && python/bin/python -c 'import mcp' >/dev/null 2>&1; then
    echo "tools/peers: python/ is current ($(python/bin/python -c 'import importlib.metadata as m; print("mcp", m.version("mcp"))'))"
else
    rm -rf python
    python3 -m venv python
    python/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
    python/bin/python -c 'import mcp' >/dev/null
    echo "$py_stamp" > "$py_stamp_file"
    echo "tools/peers: installed python/ (mcp $(python/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
fi
