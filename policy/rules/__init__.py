"""The pack's rules, one module each (shared helpers in `common`).

Register a new rule here and nowhere else: add its module to the tuple below. The order is the
order the engine lists and runs them in. Imports are relative because the engine runs the pack
with `policy/` on sys.path (this is the top-level package `rules` there) while the tests import
it as `policy.rules`.
"""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    app_insights_connection_string,
    app_insights_entra_ingestion,
    aws_reader_identity_reader_only,
    flex_no_ftp_policy,
    flex_site_config,
    function_app_front_door,
    function_app_transport,
    monitoring_local_auth,
    no_key_based_storage_access,
    no_long_lived_credentials,
    s3_access_logging,
    s3_bucket_has_public_access_block,
    s3_public_access_block_complete,
    storage_account_shared_key,
    web_identity_role_least_privilege,
    web_identity_token_audience,
    web_identity_trust,
)

POLICIES: list[Policy] = [
    module.POLICY
    for module in (
        storage_account_shared_key,
        no_key_based_storage_access,
        s3_public_access_block_complete,
        s3_bucket_has_public_access_block,
        web_identity_trust,
        web_identity_role_least_privilege,
        function_app_transport,
        function_app_front_door,
        flex_site_config,
        flex_no_ftp_policy,
        no_long_lived_credentials,
        monitoring_local_auth,
        app_insights_entra_ingestion,
        app_insights_connection_string,
        s3_access_logging,
        web_identity_token_audience,
        aws_reader_identity_reader_only,
    )
]
