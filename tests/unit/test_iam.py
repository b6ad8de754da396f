"""Least privilege in template.yaml: every function runs under its own role, and every policy in the template names
the table (and its index), queue, bus, key, secret or log group it is for, with named actions.

The checker below fails on a ``*`` action or resource wherever AWS offers a narrower one; the mutation tests at the
end prove that it does (a wildcard introduced anywhere turns this file red).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.template import load_template
from tests.support import ROOT

FUNCTION_ROLES = {
    "ApiFunction": "ApiRole",
    "TransferWorkerFunction": "TransferWorkerRole",
    "ReconcilerFunction": "ReconcilerRole",
    "TokenRefresherFunction": "TokenRefresherRole",
    "JobSweeperFunction": "JobSweeperRole",
    "SummarizerFunction": "SummarizerRole",
}

# What each function may touch (logical ids), from its code: the API stores tokens, reads both secrets and queues
# transfers; the worker consumes and re-queues; the sweeper only reads the dead-letter depth.
COMMON = {"Table", "EventBus"}
EXPECTED_RESOURCES = {
    "ApiFunction": COMMON
    | {"ApiLogGroup", "TransferQueue", "TokenKey", "AdminKeySecret", "QboClientSecret", "QboWebhookVerifierToken"},
    "TransferWorkerFunction": COMMON | {"TransferWorkerLogGroup", "TransferQueue", "TokenKey", "QboClientSecret"},
    "ReconcilerFunction": COMMON | {"ReconcilerLogGroup", "TransferQueue", "TokenKey", "QboClientSecret"},
    "TokenRefresherFunction": COMMON | {"TokenRefresherLogGroup", "TokenKey", "QboClientSecret"},
    "JobSweeperFunction": COMMON | {"JobSweeperLogGroup", "TransferQueue", "TransferDeadLetterQueue"},
    "SummarizerFunction": COMMON | {"SummarizerLogGroup", "TransferQueue"},
}

# Actions AWS authorizes only against Resource "*" (no resource-level permissions exist for them).
RESOURCE_STAR_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

# boto3 calls in shared/qbsync → the IAM actions they need (a transaction needs the per-item actions).
CODE_CALLS = {
    "get_item": {"dynamodb:GetItem"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "query": {"dynamodb:Query"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem"},
    "transact_write_items": {"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    "send_message_batch": {"sqs:SendMessage"},
    "send_message": {"sqs:SendMessage"},
    "get_queue_attributes": {"sqs:GetQueueAttributes"},
    "put_events": {"events:PutEvents"},
    "encrypt": {"kms:Encrypt"},
    "decrypt": {"kms:Decrypt"},
    "get_secret_value": {"secretsmanager:GetSecretValue"},
}
# Granted for AWS services acting for the function, not called by qbsync code.
PLATFORM_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    # the SQS event source mapping polls and deletes on the worker's behalf
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, kind, document) for every permission policy in the template; kind is identity, resource or key."""
    for name, resource in template["Resources"].items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                yield f"{name}/{policy.get('PolicyName')}", "identity", policy["PolicyDocument"]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield name, "identity", props["PolicyDocument"]
        elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::Events::EventBusPolicy"):
            yield name, "resource", props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield name, "key", props["KeyPolicy"]


def _literal_text(value: Any) -> str | None:
    """The literal text of a resource entry (plain string or the template of a Sub); None for Ref/GetAtt."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return None


def _is_account_root(principal: Any) -> bool:
    arn = principal.get("AWS") if isinstance(principal, dict) else None
    text = _literal_text(arn) if arn is not None else None
    return text is not None and text.endswith(":iam::${AWS::AccountId}:root")


def statement_violations(where: str, kind: str, statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    problems = []
    sid = statement.get("Sid", "?")
    for key in ("NotAction", "NotResource", "NotPrincipal"):
        if key in statement:
            problems.append(f"{where}/{sid}: {key} grants everything but a list")
    actions = [str(a) for a in _as_list(statement.get("Action", []))]
    key_admin = kind == "key" and _is_account_root(statement.get("Principal"))
    for action in actions:
        if "*" in action and not key_admin:
            problems.append(f"{where}/{sid}: wildcard action {action!r}")
    principal = statement.get("Principal")
    if principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))):
        condition = str(statement.get("Condition", {}))
        if "CallerAccount" not in condition and "SourceAccount" not in condition:
            problems.append(f"{where}/{sid}: Principal * without an account condition")
    for resource in _as_list(statement.get("Resource", [])):
        text = _literal_text(resource)
        if text is None:
            continue  # Ref / GetAtt of one template resource
        if text == "*":
            # In a key policy "*" is the key itself; otherwise only actions without resource-level permissions.
            if kind != "key" and not set(actions) <= RESOURCE_STAR_ONLY:
                problems.append(f"{where}/{sid}: Resource * for {actions}")
        elif "*" in text:
            problems.append(f"{where}/{sid}: wildcard resource {text!r}")
    return problems


def violations(template: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    resources = template["Resources"]
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        if "Policies" in props:
            problems.append(f"{name}: SAM Policies (SAM would add AWSLambdaBasicExecutionRole: logs on *)")
        role = props.get("Role")
        if not (isinstance(role, dict) and role.get("Fn::GetAtt", [None])[0] in resources):
            problems.append(f"{name}: no Role of its own from this template")
    for name, resource in resources.items():
        if resource.get("Type") == "AWS::IAM::Role":
            for arn in (resource.get("Properties") or {}).get("ManagedPolicyArns") or []:
                if not (isinstance(arn, dict) and arn.get("Ref") in resources):
                    problems.append(f"{name}: managed policy {arn!r} is not one of this template's")
    for where, kind, document in policy_documents(template):
        for statement in _as_list(document.get("Statement", [])):
            problems.extend(statement_violations(where, kind, statement))
    return problems


_SUB_NAMES = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}")


def referenced_ids(value: Any, resources: dict[str, Any]) -> set[str]:
    if isinstance(value, list):
        return set().union(*(referenced_ids(v, resources) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, arg in value.items():
        if key == "Ref" and arg in resources:
            found.add(arg)
        elif key == "Fn::GetAtt":
            found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
        elif key == "Fn::Sub":
            text = arg[0] if isinstance(arg, list) else arg
            found |= {n for n in _SUB_NAMES.findall(str(text)) if n in resources}
        else:
            found |= referenced_ids(arg, resources)
    return found


def role_grants(template: dict[str, Any], role: str) -> tuple[set[str], set[str]]:
    """(logical ids named in resources, actions) over the role's inline and attached template policies."""
    resources = template["Resources"]
    props = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
    documents += [resources[arn["Ref"]]["Properties"]["PolicyDocument"] for arn in props.get("ManagedPolicyArns", [])]
    ids: set[str] = set()
    actions: set[str] = set()
    for document in documents:
        for statement in _as_list(document["Statement"]):
            ids |= referenced_ids(statement.get("Resource"), resources)
            actions |= {str(a) for a in _as_list(statement["Action"])}
    return ids, actions


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_the_template_has_no_wildcard_where_a_narrower_grant_exists(template: dict[str, Any]) -> None:
    assert violations(template) == []


def test_each_function_has_its_own_role_naming_only_what_it_uses(template: dict[str, Any]) -> None:
    functions = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTION_ROLES)
    for function, role in FUNCTION_ROLES.items():
        assert template["Resources"][function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        ids, _ = role_grants(template, role)
        assert ids == EXPECTED_RESOURCES[function], function
        # the function's log group is the one its logs go to
        log_group = template["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]
        assert log_group["Ref"] in ids


def test_granted_actions_are_the_ones_the_code_calls(template: dict[str, Any]) -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "shared" / "qbsync").rglob("*.py"))
    called = set().union(*(actions for call, actions in CODE_CALLS.items() if f".{call}(" in code))
    granted = set().union(*(role_grants(template, role)[1] for role in FUNCTION_ROLES.values()))
    assert called - granted == set(), "the code calls AWS actions no role grants"
    assert granted - called - PLATFORM_ACTIONS == set(), "roles grant actions no code calls"


def test_only_the_worker_consumes_the_queue_and_only_the_sweeper_reads_the_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    for function, role in FUNCTION_ROLES.items():
        _, actions = role_grants(template, role)
        assert ("sqs:ReceiveMessage" in actions) == (function == "TransferWorkerFunction"), function
        ids, _ = role_grants(template, role)
        assert ("TransferDeadLetterQueue" in ids) == (function == "JobSweeperFunction"), function
        assert ("AdminKeySecret" in ids) == (function == "ApiFunction"), function


def _statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    document = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def _mutations() -> dict[str, Any]:
    def resource_star(t: dict[str, Any]) -> None:
        _statement(t, "ApiRole", "TransferQueue")["Resource"] = "*"

    def action_star(t: dict[str, Any]) -> None:
        _statement(t, "ApiRole", "TransferQueue")["Action"] = "sqs:SendMessage*"

    def service_star(t: dict[str, Any]) -> None:
        _statement(t, "JobSweeperRole", "DeadLetterDepth")["Action"] = ["sqs:*"]

    def index_star(t: dict[str, Any]) -> None:
        common = t["Resources"]["FunctionCommonPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        next(s for s in common if s["Sid"] == "TableIndex")["Resource"] = {"Fn::Sub": "${Table.Arn}/index/*"}

    def sam_policies(t: dict[str, Any]) -> None:
        t["Resources"]["ReconcilerFunction"]["Properties"]["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": "x"}}]

    def aws_managed(t: dict[str, Any]) -> None:
        t["Resources"]["TokenRefresherRole"]["Properties"]["ManagedPolicyArns"].append(
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        )

    def topic_star(t: dict[str, Any]) -> None:
        statement = t["Resources"]["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        statement["Principal"] = "*"
        del statement["Condition"]

    def key_star_for_everyone(t: dict[str, Any]) -> None:
        key_policy = t["Resources"]["TokenKey"]["Properties"]["KeyPolicy"]["Statement"]
        next(s for s in key_policy if s["Sid"] == "DynamoDBUse")["Action"] = "kms:*"

    return {f.__name__: f for f in (resource_star, action_star, service_star, index_star, sam_policies, aws_managed,
                                     topic_star, key_star_for_everyone)}  # fmt: skip


@pytest.mark.parametrize("mutation", sorted(_mutations()))
def test_a_wildcard_introduced_anywhere_is_caught(template: dict[str, Any], mutation: str) -> None:
    mutated = copy.deepcopy(template)
    _mutations()[mutation](mutated)
    assert violations(mutated) != [], mutation
