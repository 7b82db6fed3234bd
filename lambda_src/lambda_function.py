"""AWS Lambda entry point (`lambda_function.handler`): an AWS role reads the Azure data container.

Events: `{"action": "list"}` and `{"action": "read", "name": "<blob name>"}`; the answer is JSON
(crosscloud_lambda.app). Invoked through the Lambda API with IAM; the function has no URL.
"""

from __future__ import annotations

from typing import Any

from crosscloud_lambda.app import handle


def handler(event: Any, context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return handle(event, remaining() if callable(remaining) else None)
