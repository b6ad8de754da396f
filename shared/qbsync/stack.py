"""A deployed stack seen from an operator's machine: its CloudFormation outputs and the secrets they name.

``qbsync --stack NAME …`` takes the API URL from the ``ApiUrl`` output and the admin key from the secret named by
``AdminKeySecretArn``, with the caller's AWS credentials (boto3's usual chain; ``AWS_ENDPOINT_URL`` is honoured,
which is how the tests point it at the embedded AWS).
"""

from __future__ import annotations

from typing import Any

from qbsync import aws
from qbsync.settings import Settings


class StackError(Exception):
    pass


def stack_outputs(stack_name: str, settings: Settings | None = None) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    settings = settings or Settings.from_env()
    try:
        stacks = aws.client("cloudformation", settings).describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise StackError(f"cannot read stack {stack_name!r}: {exc}") from None
    if not stacks:
        raise StackError(f"no stack {stack_name!r}")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def secret_arn(outputs: dict[str, str], output: str) -> str:
    if not output.endswith("SecretArn"):
        raise StackError(f"{output} is not a secret output (expected a name ending in SecretArn)")
    if output not in outputs:
        known = ", ".join(sorted(k for k in outputs if k.endswith("SecretArn")))
        raise StackError(f"the stack has no {output} output; secret outputs: {known}")
    return outputs[output]


def read_secret(outputs: dict[str, str], output: str, settings: Settings | None = None) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    arn = secret_arn(outputs, output)
    try:
        value: Any = aws.client("secretsmanager", settings or Settings.from_env()).get_secret_value(SecretId=arn)
    except (ClientError, BotoCoreError) as exc:
        raise StackError(f"cannot read {output}: {exc}") from None
    return str(value["SecretString"])


def put_secret(outputs: dict[str, str], output: str, value: str, settings: Settings | None = None) -> dict[str, str]:
    """Store ``value`` as the secret's new current version (the functions pick it up within their cache time)."""
    from botocore.exceptions import BotoCoreError, ClientError

    arn = secret_arn(outputs, output)
    value = value.strip()
    if not value:
        raise StackError("refusing to store an empty secret")
    try:
        answer = aws.client("secretsmanager", settings or Settings.from_env()).put_secret_value(
            SecretId=arn, SecretString=value
        )
    except (ClientError, BotoCoreError) as exc:
        raise StackError(f"cannot write {output}: {exc}") from None
    return {"secret": arn, "version_id": str(answer.get("VersionId", ""))}
