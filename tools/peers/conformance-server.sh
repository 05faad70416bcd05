#!/usr/bin/env bash
# Grade an MCP server over Streamable HTTP with the official conformance suite.
#
#   tools/peers/conformance-server.sh URL [OUTDIR] [SCENARIO]
#
# Runs the suite's `server` mode once per protocol revision (REVISIONS, default
# "2025-11-25 2026-07-28"; each uses `--requirements REV`, i.e. exactly the scenarios that
# revision requires, at its wire version). Per-scenario results stay in the suite's output
# above. The last line is machine-readable and counts scored scenarios over all revisions:
#   PASSED=N FAILED=M TOTAL=T
# preceded by UNSCORED_PASSED=.. UNSCORED_FAILED=.. for scenarios the suite reports as not
# scored (extensions, pending). Exits 0 whenever the suite ran, so callers compare scores;
# 2 if the peers are not installed or the suite could not run.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_install

url="${1:?usage: conformance-server.sh URL [OUTDIR] [SCENARIO]}"
outdir="${2:-$(mktemp -d -t portcullis-conformance-server.XXXXXX)}"
scenario="${3:-}"
revisions="${REVISIONS:-2025-11-25 2026-07-28}"
mkdir -p "$outdir"

passed=0 failed=0 unscored_passed=0 unscored_failed=0
for rev in $revisions; do
    log="$outdir/server-$rev.log"
    args=(server --url "$url" --requirements "$rev" -o "$outdir/$rev")
    [[ -n "$scenario" ]] && args+=(--scenario "$scenario")
    echo "=== conformance server --requirements $rev ${scenario:+--scenario $scenario}"
    "$node" "$suite" "${args[@]}" 2>&1 | tee "$log" | sed -n '/=== SUMMARY ===/,$p'
    if ! grep -q '=== SUMMARY ===' "$log"; then
        echo "conformance suite did not run for $rev (see $log)" >&2
        exit 2
    fi
    read -r p f up uf < <(count_summary "$log")
    passed=$((passed + p)) failed=$((failed + f))
    unscored_passed=$((unscored_passed + up)) unscored_failed=$((unscored_failed + uf))
done

echo "UNSCORED_PASSED=$unscored_passed UNSCORED_FAILED=$unscored_failed OUTDIR=$outdir"
echo "PASSED=$passed FAILED=$failed TOTAL=$((passed + failed))"
