"""Entry point the Pulumi engine runs for `--policy-pack policy` (runpy, with this folder on
sys.path, hence the plain `rules` import).

Every rule is mandatory. A violation fails the pull-request preview; during `pulumi up`, resource
rules stop the update before the offending resource is created, while stack rules only see the
stack after its changes, so the preview is their gate.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(
    name="crosscloud-guardrails",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
)
