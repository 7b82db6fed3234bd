"""Validation building blocks shared by the `crosscloud:*` settings of the environment stacks
(components/settings.py) and of the foundation (components/foundation_settings.py).

A value valid in one is valid in the other because both use these: the `Parser` that collects
every problem, the name patterns, and the rules (each returns None or what is allowed).
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

NAMESPACE = "crosscloud"

# Patterns are applied with `fullmatch` (never `match` with `^...$`: `$` also matches before a
# trailing newline, so "abc\n" would pass and fail later, far from its config key).
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PREFIX = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,11}")
AZURE_LOCATION = re.compile(r"[a-z][a-z0-9]{2,39}")
AWS_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName)
IAM_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
# Entra app display names allow most text; we keep to what reads well in portals and CLIs.
_DISPLAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,119}")
_CUSTOM_AUDIENCE = re.compile(r"(?:api|https)://[A-Za-z0-9._~:/?#@!$&'()+,;=%-]{1,240}")
MAX_AUDIENCE_LENGTH = len("https://") + 240
"""The longest audience `crosscloud:audience` accepts (sizes a trust policy whose audience is
only known as an output, such as a foundation's)."""
# https://www.pulumi.com/docs/iac/concepts/stacks/#stackreferences: <organization>/<project>/<stack>
_STACK_REFERENCE = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
# IAM names a provider after its URL without the scheme; Entra v1 issuers end with a slash.
_OIDC_PROVIDER_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::\d{12}:oidc-provider/sts\.windows\.net/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/?"
)

AUDIENCE_TENANT = "tenant"
AUDIENCE_APP_ID = "appId"


def config_key(name: str) -> str:
    """The full config key of a setting (`crosscloud:{name}`), as errors name it."""
    return f"{NAMESPACE}:{name}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class Parser:
    """Collects every problem so one `pulumi preview` shows them all, not one per run."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, name: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{config_key(name)} = {_text(value)!r} is not allowed: {allowed}")

    def string(self, name: str, default: str, check: Callable[[str], str | None]) -> str:
        value = self.raw.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(name, value, "expected a string")
            return default
        problem = check(value)
        if problem:
            self.fail(name, value, problem)
            return default
        return value

    def structured(self, name: str, default: Any) -> Any:
        """Pulumi hands structured config (lists, maps) to programs as JSON text."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                self.fail(
                    name, value, "expected structured YAML/JSON config (use --path or a list)"
                )
                return default
        return value

    def boolean(self, name: str) -> bool:
        """An opt-in: `true` or `false` (unset is false), as `pulumi config set` writes them."""
        value = self.raw.get(name)
        if value is None:
            return False
        text = str(value).lower() if isinstance(value, str | bool) else None
        if text not in ("true", "false"):
            self.fail(name, value, "true or false")
            return False
        return text == "true"

    def integer(self, name: str, default: int, check: Callable[[int], str | None]) -> int:
        value = self.raw.get(name)
        if value is None:
            return default
        try:
            number = int(str(value), 10)
        except ValueError:
            self.fail(name, value, "expected a whole number")
            return default
        problem = check(number)
        if problem:
            self.fail(name, value, problem)
            return default
        return number


def matches(pattern: re.Pattern[str], rule: str) -> Callable[[str], str | None]:
    """A check for `Parser.string`: the whole value matches `pattern`, else `rule` is allowed."""
    return lambda value: None if pattern.fullmatch(value) else rule


def within(bounds: tuple[int, int], unit: str, why: str = "") -> Callable[[int], str | None]:
    """A check for `Parser.integer`: `bounds[0] <= value <= bounds[1]`, else names the range
    (and `why`, in parentheses)."""
    low, high = bounds
    allowed = f"{unit} from {low} to {high}" + (f" ({why})" if why else "")
    return lambda value: None if low <= value <= high else allowed


def display_name_problem(value: str) -> str | None:
    return matches(
        _DISPLAY_NAME,
        "1-120 characters of letters, digits, spaces, '.', '_' and '-', "
        "starting with a letter or digit",
    )(value)


def audience_problem(value: str) -> str | None:
    if value in (AUDIENCE_TENANT, AUDIENCE_APP_ID):
        return None
    if not _CUSTOM_AUDIENCE.fullmatch(value) or value.endswith("/") or "*" in value:
        return (
            f"'{AUDIENCE_TENANT}', '{AUDIENCE_APP_ID}', or an api:// or https:// URI without "
            "wildcards, spaces or a trailing slash (it must equal the token's aud exactly)"
        )
    return None


def stack_reference_problem(value: str) -> str | None:
    if not _STACK_REFERENCE.fullmatch(value):
        return (
            "the foundation's fully qualified stack name, <organization>/<project>/<stack> "
            "(letters, digits, '-', '_' and '.'); with a local backend (pulumi login --local) "
            "the organization is the literal word organization: "
            "organization/crosscloud-foundation/shared"
        )
    return None


def oidc_provider_arn_problem(value: str) -> str | None:
    if not _OIDC_PROVIDER_ARN.fullmatch(value):
        return (
            "the ARN of an IAM OIDC provider for an Entra tenant's v1 issuer, "
            "arn:<partition>:iam::<account id>:oidc-provider/sts.windows.net/<tenant id>/"
        )
    return None


# Characters no name should hold: controls (Cc, incl. U+0085 NEXT LINE), invisible format
# characters (Cf, incl. the bidi override U+202E that makes a name display as another), surrogates,
# private-use and unassigned code points, and the line/paragraph separators U+2028/U+2029.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_hidden_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in _HIDDEN_CATEGORIES for ch in value)


def key_prefix_problem(value: str) -> str | None:
    """The prefix is a folder, so the role's `bucket/{prefix}*` grant ends at a `/`.

    Without it, `reports` would grant `reports*`, which includes `reports-confidential/`.
    Refusing (rather than appending the slash) keeps the security boundary what the operator
    reads in the stack config.
    """
    if value == "":
        return None
    if not value.endswith("/"):
        return (
            f"a folder ending with '/': write {value + '/'!r} - without the slash the role "
            f"would also read every key starting with {value!r} (such as {value + '-private/'!r})"
        )
    if len(value.encode("utf-8")) > 512:
        return "up to 512 bytes of UTF-8"
    if has_hidden_characters(value):
        return "no control, format (such as U+202E) or line-separator characters"
    if any(ch in value for ch in "*?$\\"):
        return "no IAM wildcards ('*', '?'), policy variables ('$') or backslashes"
    segments = value[:-1].split("/")
    if value.startswith("/") or "" in segments:
        return "not starting with '/' and without empty segments ('//')"
    if any(segment in (".", "..") for segment in segments):
        return "without '.' or '..' segments"
    if any(segment != segment.strip() for segment in segments):
        return "no segment starting or ending with white space"
    return None


# Tags must be accepted by both clouds, so each rule is the stricter of the two:
# - AWS (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html and
#   https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html): keys 1-128 and values
#   0-256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; the `aws:` prefix (any case) is reserved.
# - Azure (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources
#   #limitations): names up to 512 characters (128 on storage accounts), values up to 256; names
#   cannot contain `<`, `>`, `%`, `&`, `\`, `?` or `/`.
# - Count: the AWS provider's default tags reach every AWS resource, the sample S3 objects too,
#   and S3 allows 10 tags per object
#   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html); Azure
#   resources take 50, of which the program adds 2.
MAX_TAGS = 10
_TAG_SYMBOLS = frozenset("_.:/=+-@")
_AZURE_TAG_NAME_FORBIDDEN = "<>%&\\?/"


def _tag_text_problem(text: str) -> str | None:
    for ch in text:
        category = unicodedata.category(ch)
        # \p{Z} also holds U+2028/U+2029 (line/paragraph separators); keep to Zs (spaces).
        if ch not in _TAG_SYMBOLS and category[0] not in "LN" and category != "Zs":
            return f"holds {ch!r}: only letters, digits, spaces and _ . : / = + - @ (AWS)"
    if text.lower().startswith("aws:"):
        return "starts with 'aws:', which AWS reserves"
    return None


def _tag_problems(name: Any, value: Any) -> list[str]:
    if not isinstance(name, str) or not isinstance(value, str):
        numbers = [
            v for v in (name, value) if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        return [
            f"tag {name!r}: names and values must be strings"
            + (quote_hint(numbers[0]) if numbers else "")
        ]
    problems = []
    if not 1 <= len(name) <= 128:
        problems.append(f"tag name {name[:40]!r}: 1-128 characters (AWS; Azure storage accounts)")
    if forbidden := sorted({ch for ch in name if ch in _AZURE_TAG_NAME_FORBIDDEN}):
        problems.append(
            f"tag name {name!r} holds {' '.join(forbidden)}: Azure tag names cannot contain "
            "< > % & \\ ? /"
        )
    elif problem := _tag_text_problem(name):
        problems.append(f"tag name {name!r} {problem}")
    if len(value) > 256:
        problems.append(f"tag {name!r}: values are at most 256 characters (both clouds)")
    if problem := _tag_text_problem(value):
        problems.append(f"tag {name!r} value {value!r} {problem}")
    return problems


def parse_tags(parser: Parser) -> dict[str, str]:
    """`crosscloud:tags`, valid in both clouds; any problem is recorded in `parser`."""
    name = "tags"
    value = parser.structured(name, {})
    if not isinstance(value, dict):
        parser.fail(name, parser.raw[name], "expected a map of tag names to string values")
        return {}
    if len(value) > MAX_TAGS:
        parser.fail(name, parser.raw[name], f"at most {MAX_TAGS} tags")
        return {}
    problems = [p for k, v in value.items() for p in _tag_problems(k, v)]
    for problem in problems:
        parser.problems.append(f"{config_key(name)}: {problem}")
    return {} if problems else dict(value)


def unknown_key_problem(name: str, known: Iterable[str], where: str) -> str:
    """`crosscloud:{name}` is not a key of `where`: name the nearest known key, or list them."""
    known = tuple(known)
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {config_key(by_lower[close[0]])}?"
    else:
        hint = "known keys: " + ", ".join(config_key(k) for k in known)
    return f"{config_key(name)} is not a setting of {where}; {hint}"


def namespace_problems(keys: Iterable[str], project: str, known: Iterable[str]) -> list[str]:
    """Full config keys (`namespace:name`) whose namespace looks like a typo of `crosscloud`
    (`crossclod:awsRegion`), or is the project's own (a key written without a namespace lands
    there): Pulumi would keep them, and the program would silently use the default instead."""
    known = tuple(known)
    problems = []
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE or not name:
            continue
        near = difflib.SequenceMatcher(None, namespace.lower(), NAMESPACE).ratio() >= 0.75
        if not (near or (namespace == project and project != NAMESPACE)):
            continue
        target = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        problems.append(
            f"{key} is in namespace {namespace!r}, which this program does not read; "
            f"did you mean {config_key(target[0] if target else name)}?"
        )
    return problems


# YAML reads unquoted scalars as numbers: `3.10` becomes the float 3.1 and `012345678901` an
# integer without its leading zero; Pulumi then hands the program the number's text.
def quote_hint(value: Any) -> str:
    """What to write instead when YAML made a number of a value that must stay text."""
    return f"; YAML read an unquoted value as the number {value!r}: put it in quotes"
