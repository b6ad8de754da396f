"""Create the template's AWS resources in an embedded AWS (moto) and work out the environment the functions get.

Everything comes from ``template.yaml``: queues, table, bus, key and secrets are created with the template's
properties, ``Ref``/``Fn::GetAtt``/``Fn::Sub`` resolve to the local physical ids CloudFormation would return, and
the functions' environment is ``Globals.Function.Environment`` resolved the same way. Resources the local stack does
not emulate (functions, API, alarms, layers) are skipped; functions are described in ``LocalResources.functions`` so
the local worker and scheduler know what to run and when.

Bootstrapping is idempotent: names are deterministic (``<prefix>-<LogicalId>``), existing resources are reused.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import secrets
import string
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.template import ROOT, cached_template
from qbsync.lambda_context import DEFAULT_REGION, LOCAL_ACCOUNT_ID

log = logging.getLogger("qbsync.local.bootstrap")

LOCAL_STAGE = "local"
LOCAL_ADMIN_KEY = "local-admin-key"
LOCAL_PARTITION = "aws"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Only the endpoint passed in counts: an AWS_ENDPOINT_URL in the environment would otherwise escape mock_aws.
CLIENT_CONFIG = Config(  # type: ignore[call-arg]  # botocore >= 1.31 has it; the stubs lag
    ignore_configured_endpoint_urls=True, retries={"mode": "standard", "max_attempts": 3}
)
ADMIN_SECRET_ENV = "QBSYNC_ADMIN_KEY_SECRET_ARN"
QBO_SECRET_ENV = "QBO_CLIENT_SECRET_ARN"

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_SUB_VAR = re.compile(r"\$\{([^}]+)\}")

# CloudFormation AWS::SQS::Queue properties that map one to one onto SQS queue attributes.
_SQS_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_SUPPORTED_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
)
_FUNCTION_TYPES = ("AWS::Serverless::Function",)


class BootstrapError(RuntimeError):
    """The template uses something the local bootstrap cannot resolve."""


@dataclass
class LocalResources:
    """What :func:`bootstrap` created: physical ids, resolved attributes, functions and their environment."""

    endpoint_url: str | None
    region: str
    account_id: str
    stage: str
    prefix: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    """Logical id → what ``!Ref`` returns (queue URL, table name, bus name, key id, secret ARN)."""
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Logical id → ``!GetAtt`` attributes (``Arn``, ``QueueName``, ``QueueUrl``…)."""
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Function logical id → ``{code_uri, handler, timeout, memory_size, function_name, environment, events}``."""
    env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT

    def queue_url(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]

    def admin_key(self) -> str:
        return self.env.get("QBSYNC_ADMIN_KEY", LOCAL_ADMIN_KEY)


def parse_rate(expression: str) -> int | None:
    """Seconds between runs of a ``rate(N unit)`` schedule; ``None`` for anything else (``cron(...)``)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * _RATE_UNITS[unit]


def generate_secret_string(spec: Mapping[str, Any]) -> str:
    """A local stand-in for Secrets Manager's ``GenerateSecretString`` (length and character-class options)."""
    length = int(spec.get("PasswordLength", 32))
    alphabet = ""
    if not spec.get("ExcludeLowercase"):
        alphabet += string.ascii_lowercase
    if not spec.get("ExcludeUppercase"):
        alphabet += string.ascii_uppercase
    if not spec.get("ExcludeNumbers"):
        alphabet += string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    if spec.get("IncludeSpace"):
        alphabet += " "
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    alphabet = "".join(c for c in alphabet if c not in excluded) or string.ascii_letters
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    template_text = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template_text and key:
        data = json.loads(template_text)
        data[key] = value
        return json.dumps(data)
    return value


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class _Bootstrapper:
    def __init__(
        self,
        endpoint_url: str | None,
        prefix: str,
        template: dict[str, Any],
        environ: Mapping[str, str],
    ) -> None:
        self.template = template
        self.environ = environ
        self.prefix = prefix
        region = (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION).strip()
        self.out = LocalResources(
            endpoint_url=endpoint_url, region=region, account_id=LOCAL_ACCOUNT_ID, stage=LOCAL_STAGE, prefix=prefix
        )
        # Dummy credentials on purpose: the bootstrap only ever talks to the embedded AWS.
        self._session: Any = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=region,
        )
        self._clients: dict[str, Any] = {}
        self._resources: dict[str, Any] = template.get("Resources", {})
        self._in_progress: set[str] = set()
        self._parameters = self._parameter_values()

    # -- plumbing -------------------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self.out.endpoint_url, config=CLIENT_CONFIG
            )
        return self._clients[service]

    def _parameter_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, spec in (self.template.get("Parameters") or {}).items():
            if "Default" in spec:
                values[name] = _stringify(spec["Default"])
        values["Stage"] = LOCAL_STAGE
        return values

    def _physical_name(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id}"

    # -- intrinsic functions --------------------------------------------------------------------------------------

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.out.region,
            "AWS::AccountId": self.out.account_id,
            "AWS::Partition": LOCAL_PARTITION,
            "AWS::StackName": self.prefix,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        if name in (self.template.get("Parameters") or {}):
            raise BootstrapError(f"parameter {name} has no default")
        if name not in self._resources:
            raise BootstrapError(f"!Ref {name}: no such parameter or resource")
        self.ensure(name)
        return self.out.physical_ids[name]

    def get_att(self, name: str, attribute: str) -> str:
        if name not in self._resources:
            raise BootstrapError(f"!GetAtt {name}.{attribute}: no such resource")
        self.ensure(name)
        try:
            return self.out.attributes[name][attribute]
        except KeyError:
            raise BootstrapError(f"!GetAtt {name}.{attribute} is not supported locally") from None

    def sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value[0], {k: self.resolve(v) for k, v in (value[1] if len(value) > 1 else {}).items()}
        else:
            text, variables = value, {}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and not token.startswith("AWS::"):
                resource, attribute = token.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(token)

        return _SUB_VAR.sub(replace, str(text))

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions anywhere inside ``value``."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(str(arg[0]))
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(str(arg[0])) else arg[2])
            if key.startswith("Fn::"):
                raise BootstrapError(f"{key} is not supported by the local bootstrap")
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        """Evaluate one of the template's ``Conditions`` (parameters at their defaults, ``Stage`` local)."""
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise BootstrapError(f"condition {name}: no such condition")
        return self._truth(conditions[name])

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Condition":
                return self.condition(str(arg))
            if key == "Fn::Equals":
                return _stringify(self.resolve(arg[0])) == _stringify(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self._truth(arg[0])
            if key == "Fn::And":
                return all(self._truth(v) for v in arg)
            if key == "Fn::Or":
                return any(self._truth(v) for v in arg)
        raise BootstrapError(f"unsupported condition expression {value!r}")

    # -- resources ------------------------------------------------------------------------------------------------

    def ensure(self, logical_id: str) -> None:
        """Create (or find) ``logical_id`` once, creating whatever it references first."""
        if logical_id in self.out.physical_ids:
            return
        if logical_id in self._in_progress:
            raise BootstrapError(f"circular reference through {logical_id}")
        self._in_progress.add(logical_id)
        try:
            resource = self._resources[logical_id]
            kind = resource.get("Type", "")
            creator: Callable[[str, dict[str, Any]], None] = {
                "AWS::DynamoDB::Table": self._table,
                "AWS::SQS::Queue": self._queue,
                "AWS::Events::EventBus": self._event_bus,
                "AWS::KMS::Key": self._kms_key,
                "AWS::SecretsManager::Secret": self._secret,
            }.get(kind, self._not_emulated)
            creator(logical_id, resource.get("Properties") or {})
        finally:
            self._in_progress.discard(logical_id)

    def _not_emulated(self, logical_id: str, props: dict[str, Any]) -> None:
        """Resources that only exist when deployed still need a Ref/Arn (alarm dimensions, outputs)."""
        name = self._physical_name(logical_id)
        self.out.physical_ids[logical_id] = name
        kind = self._resources[logical_id].get("Type", "")
        arn = f"arn:{LOCAL_PARTITION}:cloudformation:{self.out.region}:{self.out.account_id}:local/{name}"
        if kind in _FUNCTION_TYPES:
            arn = f"arn:{LOCAL_PARTITION}:lambda:{self.out.region}:{self.out.account_id}:function:{name}"
        self.out.attributes[logical_id] = {"Arn": arn}

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        from infra.dynamo_table import create_table_from_template

        name = str(self.resolve(props["TableName"])) if "TableName" in props else self._physical_name(logical_id)
        dynamodb = self.client("dynamodb")
        try:
            description = dynamodb.describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            create_table_from_template(dynamodb, name, self.template, exist_ok=True)
            description = dynamodb.describe_table(TableName=name)["Table"]
        self.out.physical_ids[logical_id] = name
        attributes = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attributes["StreamArn"] = description["LatestStreamArn"]
        self.out.attributes[logical_id] = attributes

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        fifo = str(self.resolve(props.get("FifoQueue", False))).lower() == "true"
        name = str(self.resolve(props["QueueName"])) if "QueueName" in props else self._physical_name(logical_id)
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes: dict[str, str] = {}
        for key in _SQS_ATTRIBUTES:
            if key in props:
                attributes[key] = _stringify(self.resolve(props[key]))
        if not fifo:
            for key in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"):
                attributes.pop(key, None)
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                attributes[key] = json.dumps(self.resolve(props[key]))
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
            if mutable:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
        except ClientError as exc:
            if "NonExistentQueue" not in exc.response["Error"]["Code"]:
                raise
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.out.physical_ids[logical_id] = url
        self.out.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = str(self.resolve(props["Name"])) if "Name" in props else self._physical_name(logical_id)
        events = self.client("events")
        try:
            arn = events.describe_event_bus(Name=name)["Arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            arn = events.create_event_bus(Name=name)["EventBusArn"]
        self.out.physical_ids[logical_id] = name
        self.out.attributes[logical_id] = {"Arn": arn, "Name": name}

    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> None:
        # A key has no name, so an alias makes a second bootstrap find the first one's key.
        alias = f"alias/{self._physical_name(logical_id)}"
        kms = self.client("kms")
        try:
            metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
            kwargs: dict[str, Any] = {"Description": str(self.resolve(props.get("Description", logical_id)))}
            for key in ("KeySpec", "KeyUsage"):
                if key in props:
                    kwargs[key] = str(self.resolve(props[key]))
            if "KeyPolicy" in props:
                kwargs["Policy"] = json.dumps(self.resolve(props["KeyPolicy"]))
            metadata = kms.create_key(**kwargs)["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
            if str(self.resolve(props.get("EnableKeyRotation", False))).lower() == "true":
                kms.enable_key_rotation(KeyId=metadata["KeyId"])
        self.out.physical_ids[logical_id] = metadata["KeyId"]
        self.out.attributes[logical_id] = {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}

    def _secret_value(self, logical_id: str, props: dict[str, Any]) -> str | None:
        """The value a secret gets locally: the caller's value for secrets the functions read, else generated."""
        for env_name, value_env in ((ADMIN_SECRET_ENV, "QBSYNC_ADMIN_KEY"), (QBO_SECRET_ENV, "QBO_CLIENT_SECRET")):
            if self._global_env_ref(env_name) == logical_id:
                if value_env == "QBSYNC_ADMIN_KEY":
                    return self.environ.get(value_env) or LOCAL_ADMIN_KEY
                if self.environ.get(value_env):
                    return self.environ[value_env]
        if "SecretString" in props:
            return str(self.resolve(props["SecretString"]))
        return None

    def _global_env_ref(self, env_name: str) -> str | None:
        variables = _global_variables(self.template)
        value = variables.get(env_name)
        return value.get("Ref") if isinstance(value, dict) else None

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        name = str(self.resolve(props["Name"])) if "Name" in props else self._physical_name(logical_id)
        manager = self.client("secretsmanager")
        value = self._secret_value(logical_id, props)
        try:
            arn = manager.describe_secret(SecretId=name)["ARN"]
            if value is not None:
                manager.put_secret_value(SecretId=arn, SecretString=value)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            if value is None:
                value = generate_secret_string(props.get("GenerateSecretString") or {})
            kwargs: dict[str, Any] = {"Name": name, "SecretString": value}
            if "Description" in props:
                kwargs["Description"] = str(self.resolve(props["Description"]))
            arn = manager.create_secret(**kwargs)["ARN"]
        self.out.physical_ids[logical_id] = arn
        self.out.attributes[logical_id] = {"Id": arn}

    # -- functions and environment --------------------------------------------------------------------------------

    def functions(self) -> None:
        globals_fn = (self.template.get("Globals") or {}).get("Function") or {}
        for logical_id, resource in self._resources.items():
            if resource.get("Type") not in _FUNCTION_TYPES:
                continue
            props = resource.get("Properties") or {}
            events: list[dict[str, Any]] = []
            for event_name, event in (props.get("Events") or {}).items():
                event_props = event.get("Properties") or {}
                if event.get("Type") == "SQS":
                    arn = str(self.resolve(event_props["Queue"]))
                    queue_id = self._logical_id_for_arn(arn)
                    events.append(
                        {
                            "type": "SQS",
                            "name": event_name,
                            "queue_logical_id": queue_id,
                            "queue_url": self.out.physical_ids[queue_id] if queue_id else None,
                            "queue_arn": arn,
                            "batch_size": int(event_props.get("BatchSize", 10)),
                            "report_batch_item_failures": "ReportBatchItemFailures"
                            in (event_props.get("FunctionResponseTypes") or []),
                        }
                    )
                elif event.get("Type") == "Schedule":
                    expression = str(self.resolve(event_props["Schedule"]))
                    events.append(
                        {
                            "type": "Schedule",
                            "name": event_name,
                            "schedule_expression": expression,
                            "rate_seconds": parse_rate(expression),
                            "enabled": str(event_props.get("Enabled", True)).lower() != "false",
                            "rule_arn": f"arn:{LOCAL_PARTITION}:events:{self.out.region}:{self.out.account_id}"
                            f":rule/{self.prefix}-{logical_id}{event_name}",
                        }
                    )
            variables = ((props.get("Environment") or {}).get("Variables")) or {}
            self.out.functions[logical_id] = {
                "logical_id": logical_id,
                "function_name": self._physical_name(logical_id),
                "code_uri": str(props.get("CodeUri", globals_fn.get("CodeUri", ""))),
                "handler": str(props.get("Handler", globals_fn.get("Handler", ""))),
                "timeout": int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                "memory_size": int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                "environment": {k: _stringify(self.resolve(v)) for k, v in variables.items()},
                "events": events,
            }

    def _logical_id_for_arn(self, arn: str) -> str | None:
        for logical_id, attributes in self.out.attributes.items():
            if attributes.get("Arn") == arn:
                return logical_id
        return None

    def environment(self) -> None:
        embedded: dict[str, str] = {k: _stringify(self.resolve(v)) for k, v in _global_variables(self.template).items()}
        for spec in self.out.functions.values():
            embedded.update(spec["environment"])
        embedded.update(
            {
                "QBSYNC_STAGE": LOCAL_STAGE,
                "QBSYNC_ADMIN_KEY": LOCAL_ADMIN_KEY,
                "AWS_REGION": self.out.region,
                "AWS_DEFAULT_REGION": self.out.region,
            }
        )
        if "AWS_ACCESS_KEY_ID" not in self.environ:  # credentials only as a set, never mixed with the caller's
            embedded.update(DUMMY_CREDENTIALS)
        # The caller's environment wins; embedded defaults only fill gaps.
        env = {k: self.environ.get(k, v) for k, v in embedded.items()}
        # Except the endpoint: the functions must talk to the AWS the resources were just created in.
        if self.out.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.out.endpoint_url
        self.out.env = env

    def run(self) -> LocalResources:
        for logical_id, resource in self._resources.items():
            if resource.get("Type") in _SUPPORTED_TYPES:
                self.ensure(logical_id)
        self.functions()
        self.environment()
        return self.out


def _global_variables(template: Mapping[str, Any]) -> dict[str, Any]:
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    return dict(((globals_fn.get("Environment") or {}).get("Variables")) or {})


def bootstrap(
    endpoint_url: str | None,
    *,
    prefix: str = "qbsync-local",
    template: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create every supported template resource at ``endpoint_url`` (``None``: inside ``moto.mock_aws()``)."""
    template = copy.deepcopy(template if template is not None else cached_template())
    environ = os.environ if environ is None else environ
    return _Bootstrapper(endpoint_url, prefix, template, environ).run()


def apply_env(resources: LocalResources, environ: MutableMapping[str, str] | None = None) -> None:
    """Write ``resources.env`` into the process environment and drop cached settings and clients."""
    target = os.environ if environ is None else environ
    target.update(resources.env)
    if resources.endpoint_url is None:
        # Inside mock_aws a custom endpoint would bypass the mock.
        target.pop("AWS_ENDPOINT_URL", None)
    reset_process_state()


def reset_process_state() -> None:
    """Forget cached settings and clients, and the store and services built from them: the environment changed
    (a second local stack in the same process must not reach the first one's embedded AWS)."""
    from qbsync.api.services import use_services
    from qbsync.aws import reset_clients
    from qbsync.settings import reset_settings
    from qbsync.store.factory import reset_store

    reset_settings()
    reset_clients()
    reset_store()
    use_services(None)
