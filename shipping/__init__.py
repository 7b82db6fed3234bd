"""Shipping the function app with `pulumi up`: the deterministic package builder and the dynamic
providers that deploy it (Flex One Deploy) and upload sample blobs, all with Entra tokens only."""
