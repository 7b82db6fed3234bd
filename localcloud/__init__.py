"""The local cloud: emulators and fakes on 127.0.0.1 that let the real function code run the real
trust chain (Entra token -> STS -> S3, Entra token -> Blob) without any cloud account."""
