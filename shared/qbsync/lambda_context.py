"""A Lambda-shaped context object for running handlers outside Lambda (local stack, make invoke, the CLI).

It carries the attributes and method of the Python runtime's context that handlers and Powertools read.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"


@dataclass
class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object that handlers and Powertools use."""

    function_name: str
    timeout: float
    memory_limit_in_mb: int = 512
    region: str = DEFAULT_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_context(
    function_name: str,
    timeout: float = 30,
    *,
    memory_limit_in_mb: int = 512,
    region: str = DEFAULT_REGION,
    account_id: str = LOCAL_ACCOUNT_ID,
) -> LambdaContext:
    """A fresh context (new request id, full time budget) for one invocation."""
    return LambdaContext(
        function_name=function_name,
        timeout=timeout,
        memory_limit_in_mb=memory_limit_in_mb,
        region=region,
        account_id=account_id,
    )
