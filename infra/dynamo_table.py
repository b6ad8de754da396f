"""Create qbsync's DynamoDB table from ``template.yaml`` (tests, local stack), so the key schema lives in one place.

Only what changes the data model is translated: attributes, keys, indexes, billing mode and TTL. Encryption and
point-in-time recovery (which reference the KMS key resource) are deployment concerns and are ignored here.
"""

from __future__ import annotations

from typing import Any

from infra.template import cached_template, resources_of_type

TABLE_RESOURCE = "Table"


def table_properties(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """``Properties`` of the ``Table`` resource (or of the only ``AWS::DynamoDB::Table`` in the template)."""
    template = template if template is not None else cached_template()
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    resource = tables.get(TABLE_RESOURCE)
    if resource is None:
        if len(tables) != 1:
            raise ValueError(f"expected a {TABLE_RESOURCE!r} DynamoDB table resource, found {sorted(tables)}")
        resource = next(iter(tables.values()))
    properties: dict[str, Any] = resource.get("Properties", {})
    return properties


def create_table_arguments(table_name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """``create_table`` keyword arguments equivalent to the template's table."""
    props = table_properties(template)
    billing = props.get("BillingMode", "PROVISIONED")
    args: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": [dict(a) for a in props["AttributeDefinitions"]],
        "KeySchema": [dict(k) for k in props["KeySchema"]],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        args["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    indexes = []
    for gsi in props.get("GlobalSecondaryIndexes", []):
        index: dict[str, Any] = {
            "IndexName": gsi["IndexName"],
            "KeySchema": [dict(k) for k in gsi["KeySchema"]],
            "Projection": dict(gsi["Projection"]),
        }
        if billing == "PROVISIONED":
            index["ProvisionedThroughput"] = _throughput(gsi.get("ProvisionedThroughput"))
        indexes.append(index)
    if indexes:
        args["GlobalSecondaryIndexes"] = indexes
    lsis = [
        {"IndexName": lsi["IndexName"], "KeySchema": lsi["KeySchema"], "Projection": lsi["Projection"]}
        for lsi in props.get("LocalSecondaryIndexes", [])
    ]
    if lsis:
        args["LocalSecondaryIndexes"] = lsis
    return args


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def create_table_from_template(
    dynamodb_client: Any,
    table_name: str,
    template: dict[str, Any] | None = None,
    *,
    exist_ok: bool = False,
) -> None:
    """Create ``table_name`` as the template defines ``Table``, wait until it is active, then enable TTL.

    ``exist_ok=True`` leaves an existing table alone (local stack restarts against a persistent endpoint).
    """
    args = create_table_arguments(table_name, template)
    try:
        dynamodb_client.create_table(**args)
    except dynamodb_client.exceptions.ResourceInUseException:
        if not exist_ok:
            raise
        return
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = table_properties(template).get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled", False):
        dynamodb_client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
