"""`make preflight`: read-only checks of a subscription before the first `pulumi up`."""
