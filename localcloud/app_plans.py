"""Which function apps a `LocalCloud` runs: the program's, those of neighbouring environments on
the same foundation, and extra apps that are not in any program (each shows one refusal)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from localcloud.world import FunctionAppSpec, ManagedId, World, stable_client_id

OPERATOR = "operator"
"""The managed-identity host of the deployer; no app may take its name."""


@dataclass(frozen=True)
class ExtraApp:
    """A function app that is not in the program, deployed beside its apps to show one refusal.

    It runs the same code with the settings of the program app it `copies`, changed by
    `settings`. With `new_identity` it has its own system-assigned identity, which the program
    knows nothing about (`assigned` / `blob_reader` give it the app role / Storage Blob Data
    Reader by hand, outside the program); otherwise it shares the copied app's user-assigned
    identity, as any app may attach a UAMI.
    """

    name: str
    copies: str
    new_identity: bool = False
    assigned: bool = False
    blob_reader: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppPlan:
    """One app to run: how App Service would set it up."""

    name: str
    """Key in `LocalCloud.hosts`: the program's kind (`sami`, `uami`) or the extra app's name."""
    app: FunctionAppSpec
    """Site name (WEBSITE_SITE_NAME), settings and identities; `app.identity` is the one the
    code uses."""
    extra: ExtraApp | None = None
    """Set for an app that is not in the program."""


def app_plans(
    world: World, extra_apps: Sequence[ExtraApp], neighbours: Mapping[str, World]
) -> list[AppPlan]:
    """The program's apps, then the neighbours' (as `{env}-{kind}`), then the extra apps."""
    plans = [AppPlan(kind, app) for kind, app in world.apps.items()]
    plans += [
        AppPlan(f"{env}-{kind}", app)
        for env, other in neighbours.items()
        for kind, app in other.apps.items()
    ]
    apps = {plan.name: plan.app for plan in plans}
    for extra in extra_apps:
        if extra.name in apps or extra.name == OPERATOR:
            raise ValueError(f"extra app name {extra.name!r} is taken")
        base = apps[extra.copies]
        settings = {**base.settings, **extra.settings}
        if extra.new_identity:
            principal_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"localcloud/app/{extra.name}"))
            own = ManagedId(principal_id=principal_id, client_id=stable_client_id(principal_id))
            # A system-assigned identity: no client id setting selects it.
            settings.pop("CROSSCLOUD_IDENTITY_CLIENT_ID", None)
            settings.pop("AzureWebJobsStorage__clientId", None)
            app = FunctionAppSpec(extra.name, extra.name, settings, own, ())
            plans.append(AppPlan(extra.name, app, extra))
        else:
            if base.identity not in base.user_identities:
                raise ValueError(
                    f"{extra.name}: a system-assigned identity belongs to one app; copy an app "
                    "with a user-assigned identity or give the extra app a new identity"
                )
            app = FunctionAppSpec(extra.name, extra.name, settings, None, (base.identity,))
            plans.append(AppPlan(extra.name, app, extra))
    return plans
