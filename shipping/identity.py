"""The deployer's Entra identity inside dynamic providers, kept out of Pulumi state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulumi.dynamic
from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential


class EntraIdentityProvider(pulumi.dynamic.ResourceProvider):
    """Base of the providers that act with the deployer's own Entra identity.

    Pulumi pickles a dynamic provider into state (with dill), so it may hold plain settings only.
    The optional `credential` is for tests: it is dropped when pickling, so it never reaches
    state and a deserialized provider always signs in with `DefaultAzureCredential` at
    create/update/delete time (tokens as inputs would sit in state and force a diff every run).
    """

    def __init__(self, credential: TokenCredential | None = None) -> None:
        super().__init__()
        self._credential = credential

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_credential"] = None
        return state

    @contextmanager
    def signed_in(self) -> Iterator[TokenCredential]:
        """This call's credential: the injected one, or a fresh DefaultAzureCredential."""
        if self._credential is not None:
            yield self._credential
            return
        with DefaultAzureCredential() as credential:
            yield credential
