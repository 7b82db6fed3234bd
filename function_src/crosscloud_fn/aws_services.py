"""The AWS services the function calls: the one list of them.

The code that creates botocore clients names its service through these constants, and the
package builder (shipping/build.py) reads `AWS_SERVICES` from this file to keep only these
services' models in botocore's `data/` (the other ~400 are 15 MB the function never loads).
A client for a service missing here would fail in Azure with `UnknownServiceError`; the
shipping tests fail first (tests/shipping/test_package_runs.py).
"""

STS = "sts"
"""AssumeRoleWithWebIdentity: the Entra token exchanged for role credentials."""
S3 = "s3"
"""The bucket the role may read."""

AWS_SERVICES = (STS, S3)
