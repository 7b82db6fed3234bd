"""The AWS services the Lambda calls: the one list of them.

The package builder (shipping/lambda_build.py) keeps only these services' models in botocore's
`data/`, as it does for the function (shipping/build.py).
"""

STS = "sts"
"""GetWebIdentityToken: the role's own JWT, the assertion Entra exchanges."""

AWS_SERVICES = (STS,)
