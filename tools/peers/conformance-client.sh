#!/usr/bin/env bash
# Grade an MCP client with the official conformance suite's `client` mode.
#
#   tools/peers/conformance-client.sh CMD SCENARIO|all [OUTDIR]
#
# CMD is the client command line; the suite appends the mock server's URL and passes the
# scenario in MCP_CONFORMANCE_SCENARIO / _PROTOCOL_VERSION / _CONTEXT. With `all`, runs
# `--requirements REV` for each of REVISIONS (default "2025-11-25 2026-07-28"). The last line
# is machine-readable, counting scored scenarios:
#   PASSED=N FAILED=M TOTAL=T
# Exits 0 whenever the suite ran, so callers compare scores; 2 if it could not run.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_install

cmd="${1:?usage: conformance-client.sh CMD SCENARIO|all [OUTDIR]}"
scenario="${2:?usage: conformance-client.sh CMD SCENARIO|all [OUTDIR]}"
outdir="${3:-$(mktemp -d -t portcullis-conformance-client.XXXXXX)}"
revisions="${REVISIONS:-2025-11-25 2026-07-28}"
mkdir -p "$outdir"

if [[ "$scenario" != all ]]; then
    log="$outdir/client-$scenario.log"
    log="${log//\//_}"; log="$outdir/${log##*/}"
    "$node" "$suite" client --command "$cmd" --scenario "$scenario" -o "$outdir" 2>&1 | tee "$log"
    if grep -q 'OVERALL: PASSED' "$log"; then
        echo "PASSED=1 FAILED=0 TOTAL=1"
    elif grep -q 'OVERALL: FAILED\|Test Results:' "$log"; then
        echo "PASSED=0 FAILED=1 TOTAL=1"
    else
        echo "conformance suite did not run scenario $scenario (see $log)" >&2
        exit 2
    fi
    exit 0
fi

passed=0 failed=0 unscored_passed=0 unscored_failed=0
for rev in $revisions; do
    log="$outdir/client-$rev.log"
    echo "=== conformance client --requirements $rev"
    "$node" "$suite" client --command "$cmd" --requirements "$rev" -o "$outdir/$rev" 2>&1 \
        | tee "$log" | sed -nE '/=== (SUITE )?SUMMARY ===/,$p'
    if ! grep -qE '=== (SUITE )?SUMMARY ===' "$log"; then
        echo "conformance suite did not run for $rev (see $log)" >&2
        exit 2
    fi
    read -r p f up uf < <(count_summary "$log")
    passed=$((passed + p)) failed=$((failed + f))
    unscored_passed=$((unscored_passed + up)) unscored_failed=$((unscored_failed + uf))
done

echo "UNSCORED_PASSED=$unscored_passed UNSCORED_FAILED=$unscored_failed OUTDIR=$outdir"
echo "PASSED=$passed FAILED=$failed TOTAL=$((passed + failed))"
