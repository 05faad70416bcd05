# Shared by the conformance scripts: locate Node 22 and the suite, and turn the suite's
# "=== SUMMARY ===" block into counts. Sourced, not executed.

peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node="$peers_dir/node_modules/.bin/node"
suite="$peers_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"

require_install() {
    if [[ ! -x "$node" || ! -f "$suite" ]]; then
        echo "tools/peers is not installed: run tools/peers/install.sh" >&2
        exit 2
    fi
}

# Print "PASSED_SCENARIOS FAILED_SCENARIOS UNSCORED_PASSED UNSCORED_FAILED" for one suite log.
# Scenario lines look like "✓ name: 3 passed, 0 failed"; the "Not scored for REV" block lists
# scenarios (extensions, pending, added later) that do not count towards conformance.
count_summary() {
    awk '
        /=== (SUITE )?SUMMARY ===/ { in_summary = 1; next }
        /^Not scored for/ { in_unscored = 1; next }
        in_summary && !in_unscored && /^[✓✗] [^ ]+: [0-9]+ passed, [0-9]+ failed/ {
            name = $2; sub(/:$/, "", name)
            status[name] = ($1 == "✓") ? "pass" : "fail"
        }
        in_unscored && /^ +[✓✗] / { unscored[$2] = 1 }
        END {
            p = f = up = uf = 0
            for (n in status) {
                if (n in unscored) { if (status[n] == "pass") up++; else uf++ }
                else { if (status[n] == "pass") p++; else f++ }
            }
            print p, f, up, uf
        }' "$1"
}
