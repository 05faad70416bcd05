# Portcullis default tier policies (docs/PRODUCT.md, "Risk tiers"), Rego flavour.
#
# Same rules and same input document as defaults/tiers.cedar:
#   read            identity + reason
#   read-sensitive  identity + reason + scope `mcp:read-sensitive` or `<server>:read-sensitive`
#   write           identity + reason + an approval bound to the call
#                   (or an active break-glass window)
# Only tools/call, resources/read and prompts/get are allowed here; any other
# method (input.action == "other") is denied unless a policy allows it.
# The gateway allows only if `allow` is true and `deny_reasons` is empty.
package portcullis

import rego.v1

default allow := false

acting_actions := {"tools/call", "resources/read", "prompts/get"}

identified if input.principal.anonymous == false

reason_ok if input.listing
reason_ok if not input.require_reason
reason_ok if input.reason

scoped if "mcp:read-sensitive" in input.principal.scopes
scoped if "read-sensitive" in input.server_scopes

tier_ok if input.tier == "read"
tier_ok if {
	input.tier == "read-sensitive"
	scoped
}
tier_ok if input.tier == "write"

allow if {
	input.action in acting_actions
	identified
	reason_ok
	tier_ok
	count(deny_reasons) == 0
}

deny_reasons contains "approval required" if {
	input.tier == "write"
	not input.listing
	not input.approval_present
	not input.break_glass
}

deny_reasons contains "a reason is required for this call" if {
	input.require_reason
	not input.listing
	not input.reason
}
