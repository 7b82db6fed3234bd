"""The function app's own library: everything between an HTTP request and the two clouds.

Packaged alone with the function app (never imports the Pulumi program or the local cloud):
settings from app settings, the managed-identity credential and its exchange at AWS STS, the Blob
and S3 readers, name validation, error mapping and log redaction.
"""
