"""The AWS readers Lambda's own library: an AWS role reads the Azure data container.

Its AWS identity (the execution role) gets a JWT from STS `GetWebIdentityToken`; Entra exchanges
it, through a federated identity credential on a user-assigned managed identity, for a storage
token; that identity holds Storage Blob Data Reader on the data container only. No secret exists
anywhere on the way.

Shares the function's name validation, size limits, answer shape and redaction by importing
`crosscloud_fn` modules, which the package builder (shipping/lambda_build.py) copies in from
function_src at build time: exactly the modules these imports reach, nothing else.
"""
