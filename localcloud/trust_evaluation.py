"""IAM's evaluation of a role trust policy for `sts:AssumeRoleWithWebIdentity`, for the subset a
web-identity trust policy uses - and a refusal for everything else (fail closed).

No Python library evaluates IAM policies, so this is ours. Each rule below is IAM's, with its
source:

- Effect: an explicit `Deny` that applies wins over any `Allow`; with no applying `Allow` the
  answer is no (implicit deny).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- Action / NotAction: IAM action names are case-insensitive (`STS:assumerolewithwebidentity`
  is the same action) and take the wildcards `*` and `?`.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
- Principal: `"*"` (and `{"AWS": "*"}`) is everyone; `{"Federated": arn}` names the provider;
  NotPrincipal is evaluated with `Deny` only (with `Allow` it would trust everyone else).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
- Condition keys for a generic OIDC provider are `{provider}:aud` and `{provider}:sub` (the
  others IAM lists - `amr`, `oaud`, `id`... - belong to Cognito, Google, Facebook and Amazon),
  key names are case-insensitive; every operator and every key must hold, values of one key
  are alternatives. A key missing from the request makes a condition false, and a negated one
  (`StringNotEquals`, `StringNotLike`...) true.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- `StringLike` knows only `*` (any run of characters) and `?` (one character); `[`, `]` and
  everything else match themselves (unlike `fnmatch`).
- `ForAnyValue:` / `ForAllValues:` qualify the positive string operators (any / every request
  value must match; `ForAllValues` holds for a missing key).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

Anything else - another operator (`...IfExists`, `Null`, `Bool`...), a set qualifier on a negated
operator, another condition key (global `aws:` keys, `:roles`, `:oid`), a policy variable
(`${...}`), a `Resource` element, an unknown element or Effect - makes the whole policy
unevaluable, and an unevaluable policy allows nobody.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.trust import WEB_IDENTITY_ACTION

OIDC_CLAIM_KEYS = frozenset({"aud", "sub"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Condition"}
)
_POLICY_ELEMENTS = frozenset({"Version", "Id", "Statement"})
_POSITIVE = {"StringEquals", "StringEqualsIgnoreCase", "StringLike"}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
}
_QUALIFIERS = ("ForAnyValue", "ForAllValues")


class Unevaluable(ValueError):
    """The policy holds something this evaluator does not evaluate the way IAM would."""


def iam_like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` is any run of characters, `?` one character, nothing else."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _text(value: Any) -> str:
    """Condition values as IAM compares them (JSON true/false/numbers become their text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise Unevaluable(f"condition value {value!r} is not a string, number or boolean")


def _principal_matches(principal: Any, federated_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping) or not principal:
        raise Unevaluable(f"principal {principal!r} is neither '*' nor a map")
    # Every kind is checked before any match counts: the answer must not depend on key order.
    if unknown := sorted(set(principal) - {"AWS", "Federated", "Service", "CanonicalUser"}):
        raise Unevaluable(f"principal type(s) {', '.join(map(repr, unknown))}")
    matched = False
    for kind, values in principal.items():
        names = [str(v) for v in _as_list(values)]
        matched |= (kind == "AWS" and "*" in names) or (
            kind == "Federated" and federated_arn in names
        )
    return matched


def _action_matches(actions: Any, action: str) -> bool:
    patterns = _as_list(actions)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise Unevaluable(f"action {actions!r}")
    return any(iam_like(p, action, ignore_case=True) for p in patterns)


def _condition_holds(
    operator: str, tests: Any, condition_prefix: str, claims: Mapping[str, Any]
) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if qualifier and (qualifier not in _QUALIFIERS or base not in _POSITIVE):
        raise Unevaluable(f"condition operator {operator!r}")
    if base not in _POSITIVE and base not in _NEGATED:
        raise Unevaluable(f"condition operator {operator!r}")
    if not isinstance(tests, Mapping) or not tests:
        raise Unevaluable(f"condition block {operator!r} is not a map of keys to values")
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)
    # Every key is evaluated (none skipped after a false one), so an unevaluable key refuses the
    # policy whatever the order of the keys in its JSON.
    results = []
    for key, expected in tests.items():
        prefix, _, claim = str(key).rpartition(":")
        if prefix.lower() != condition_prefix.lower() or claim.lower() not in OIDC_CLAIM_KEYS:
            raise Unevaluable(f"condition key {key!r} (this provider has only :aud and :sub)")
        wanted = [_text(v) for v in _as_list(expected)]
        if any("${" in w for w in wanted):
            raise Unevaluable(f"policy variable in {key!r}")
        claim = claim.lower()
        actual = [str(v) for v in _as_list(claims[claim])] if claim in claims else []

        def matches(value: str, wanted: list[str] = wanted, positive: str = positive) -> bool:
            if positive == "StringEquals":
                return value in wanted
            if positive == "StringEqualsIgnoreCase":
                return value.casefold() in {w.casefold() for w in wanted}
            return any(iam_like(w, value) for w in wanted)

        if qualifier == "ForAllValues":
            holds = all(matches(v) for v in actual)
        else:
            holds = any(matches(v) for v in actual)
        if negated:
            holds = not holds  # also true for a missing key, as IAM documents
        results.append(holds)
    return all(results)


def _applies(
    statement: Mapping[str, Any],
    federated_arn: str,
    condition_prefix: str,
    claims: Mapping[str, Any],
) -> bool:
    if not isinstance(statement, Mapping):
        raise Unevaluable(f"statement {statement!r} is not a map")
    if unknown := sorted(set(statement) - _STATEMENT_ELEMENTS):
        raise Unevaluable("statement element(s) " + ", ".join(unknown))
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise Unevaluable(f"Effect {effect!r}")
    if ("Principal" in statement) == ("NotPrincipal" in statement):
        raise Unevaluable("a statement needs exactly one of Principal and NotPrincipal")
    if ("Action" in statement) == ("NotAction" in statement):
        raise Unevaluable("a statement needs exactly one of Action and NotAction")
    if "NotPrincipal" in statement:
        if effect == "Allow":
            raise Unevaluable("NotPrincipal with Allow")
        principal_ok = not _principal_matches(statement["NotPrincipal"], federated_arn)
    else:
        principal_ok = _principal_matches(statement["Principal"], federated_arn)
    if "NotAction" in statement:
        action_ok = not _action_matches(statement["NotAction"], WEB_IDENTITY_ACTION)
    else:
        action_ok = _action_matches(statement["Action"], WEB_IDENTITY_ACTION)
    conditions = statement.get("Condition", {})
    if not isinstance(conditions, Mapping):
        raise Unevaluable("Condition is not a map")
    # Every condition is evaluated (not short-circuited) so an unevaluable one is never skipped.
    held = [_condition_holds(op, t, condition_prefix, claims) for op, t in conditions.items()]
    return principal_ok and action_ok and all(held)


def allows(
    policy: Mapping[str, Any],
    federated_arn: str,
    condition_prefix: str,
    claims: Mapping[str, Any],
) -> bool:
    """Whether IAM lets the web identity with `claims`, from the provider `federated_arn`
    (condition keys `{condition_prefix}:aud|sub`), assume a role with trust `policy`.

    Raises `Unevaluable` when the policy holds anything not evaluated here.
    """
    if not isinstance(policy, Mapping) or "Statement" not in policy:
        raise Unevaluable("the policy has no Statement")
    if unknown := sorted(set(policy) - _POLICY_ELEMENTS):
        raise Unevaluable("policy element(s) " + ", ".join(unknown))
    statements = _as_list(policy["Statement"])
    applying = [_applies(s, federated_arn, condition_prefix, claims) for s in statements]
    effects = [s["Effect"] for s, applies in zip(statements, applying, strict=True) if applies]
    return "Deny" not in effects and "Allow" in effects
