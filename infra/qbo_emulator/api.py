"""The v3 entity engine: create / sparse+full update / delete / void / read / query / batch / CDC on a
:class:`CompanyState`, with the business rules qbsync depends on. Callers hold the emulator lock.

Rules (codes in ``errors.py``): DisplayName unique across Customer/Vendor/Employee and names unique per list
(6240, case-insensitive, inactive entries included); stale SyncToken 5010; unknown reference 2500, inactive one 610;
duplicate invoice DocNumber 6140 (switchable per company, bypassed by ``include=allowduplicatedocnum``);
Invoice ``TotalAmt`` from its lines and ``Balance`` = TotalAmt - payments linked through ``Payment.Line[].LinkedTxn``;
over-applied payments and unbalanced journal entries 6000.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from infra.qbo_emulator import errors
from infra.qbo_emulator.errors import QboFault, iso_time, parse_iso
from infra.qbo_emulator.query import parse_query, run_query
from infra.qbo_emulator.state import DELETABLE, ENTITIES, NOT_IN_CDC, READ_ONLY, CompanyState

SHARED_NAMES = ("Customer", "Vendor", "Employee")
NAMED_LISTS = {"Item": "product or service", "Class": "class", "Account": "account", "Term": "term"}
PURCHASING = ("TimeActivity", "Bill", "Purchase", "PurchaseOrder")
SYSTEM_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")
MAX_BATCH_ITEMS = 30
CDC_MAX_OBJECTS = 1000


def entity_name(segment: str) -> str:
    name = ENTITIES.get(segment.lower())
    if name is None:
        raise errors.unsupported(f"Unsupported entity: {segment}")
    return name


def money(value: Any, element: str = "Amount") -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError) as exc:
        raise errors.invalid_property(f"Property Name:{element} has an invalid value: {value!r}") from exc


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _now(company: CompanyState) -> str:
    return iso_time(company.clock())


# ---- reads ------------------------------------------------------------------------------------------------


def read(company: CompanyState, entity: str, entity_id: str) -> dict[str, Any]:
    obj = company.get(entity, entity_id)
    if obj is None and entity == "CompanyInfo" and entity_id == company.realm_id:
        # Intuit documents GET /v3/company/{realmId}/companyinfo/{realmId} (the object's own Id is "1").
        obj = next(iter(company.entities["CompanyInfo"].values()), None)
    if obj is None:
        raise errors.object_not_found(entity, entity_id)
    return copy.deepcopy(obj)


def query(company: CompanyState, text: str) -> dict[str, Any]:
    parsed = parse_query(text)
    entity = ENTITIES.get(parsed.entity.lower())
    if entity is None:
        raise errors.query_error(f"Invalid entity name: {parsed.entity}")
    objects = list(company.entities[entity].values())
    if parsed.count:
        return {"totalCount": len(run_query(parsed, objects))}
    found = run_query(parsed, objects)
    page = found[parsed.start_position - 1 : parsed.start_position - 1 + parsed.max_results]
    if not page:
        return {}  # Intuit answers an empty QueryResponse object when nothing matches
    return {entity: copy.deepcopy(page), "startPosition": parsed.start_position, "maxResults": len(page)}


def cdc(company: CompanyState, entity_list: str, changed_since: str) -> list[dict[str, Any]]:
    if not entity_list:
        raise errors.required_missing("entities")
    if not changed_since:
        raise errors.required_missing("changedSince")
    try:
        since = parse_iso(changed_since)
    except ValueError as exc:
        raise errors.invalid_property(f"changedSince has an invalid value: {changed_since}") from exc
    responses: list[dict[str, Any]] = []
    budget = CDC_MAX_OBJECTS
    for raw in entity_list.split(","):
        entity = ENTITIES.get(raw.strip().lower())
        if entity is None or entity in NOT_IN_CDC:
            raise errors.unsupported(f"Change Data Capture is not supported for entity: {raw.strip()}")
        changed: list[dict[str, Any]] = []
        for obj in [*company.entities[entity].values(), *company.deleted.get(entity, {}).values()]:
            if parse_iso(obj["MetaData"]["LastUpdatedTime"]) >= since:
                changed.append(copy.deepcopy(obj))
        changed.sort(key=lambda obj: obj["MetaData"]["LastUpdatedTime"])
        changed = changed[:budget]
        budget -= len(changed)
        if changed:
            responses.append(
                {entity: changed, "startPosition": 1, "maxResults": len(changed), "totalCount": len(changed)}
            )
        else:
            responses.append({})
    return [{"QueryResponse": responses}]


# ---- writes -----------------------------------------------------------------------------------------------


def write(
    company: CompanyState, entity: str, body: Any, *, operation: str | None = None, include: str = ""
) -> dict[str, Any]:
    """Dispatch a POST to ``/{entity}``; returns the entity object for the response envelope."""
    if not isinstance(body, dict):
        raise errors.invalid_property("Failed to parse json object; expected an entity object")
    if entity in READ_ONLY:
        raise errors.unsupported(f"Operation {operation or 'Create/Update'} is not supported for {entity}.")
    op = (operation or "").lower()
    if op == "delete":
        return delete(company, entity, body)
    if op == "void":
        return void(company, entity, body)
    if op not in ("", "create", "update"):
        raise errors.unsupported(f"Operation {operation} is not supported.")
    allow_dup = "allowduplicatedocnum" in include.lower()
    if body.get("Id") not in (None, ""):
        return update(company, entity, body, allow_duplicate_doc=allow_dup)
    return create(company, entity, body, allow_duplicate_doc=allow_dup)


def create(
    company: CompanyState, entity: str, body: dict[str, Any], *, allow_duplicate_doc: bool = False
) -> dict[str, Any]:
    obj = {k: copy.deepcopy(v) for k, v in body.items() if k not in SYSTEM_FIELDS}
    _derive(company, entity, obj, None, allow_duplicate_doc)
    new_id = company.next_id(entity)
    obj.update({"Id": new_id, "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": company.metadata()})
    company.entities[entity][new_id] = obj
    _after_write(company, entity, obj, None)
    return copy.deepcopy(obj)


def _check_token(company: CompanyState, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    entity_id = str(body.get("Id", ""))
    existing = company.get(entity, entity_id)
    if existing is None:
        raise errors.object_not_found(entity, entity_id)
    if body.get("SyncToken") in (None, ""):
        raise errors.required_missing("SyncToken")
    if str(body["SyncToken"]) != existing["SyncToken"]:
        raise errors.stale_object()
    return existing


def update(
    company: CompanyState, entity: str, body: dict[str, Any], *, allow_duplicate_doc: bool = False
) -> dict[str, Any]:
    existing = _check_token(company, entity, body)
    changes = {k: copy.deepcopy(v) for k, v in body.items() if k not in SYSTEM_FIELDS}
    if body.get("sparse") in (True, "true"):
        merged = {**copy.deepcopy(existing), **changes}
    else:  # full update: omitted writable fields are cleared
        merged = {k: copy.deepcopy(existing[k]) for k in SYSTEM_FIELDS if k in existing} | changes
    _derive(company, entity, merged, existing, allow_duplicate_doc)
    merged["Id"] = existing["Id"]
    merged["SyncToken"] = str(int(existing["SyncToken"]) + 1)
    merged["MetaData"] = {"CreateTime": existing["MetaData"]["CreateTime"], "LastUpdatedTime": _now(company)}
    merged["domain"] = "QBO"
    merged["sparse"] = False
    company.entities[entity][existing["Id"]] = merged
    _after_write(company, entity, merged, existing)
    return copy.deepcopy(merged)


def delete(company: CompanyState, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    if entity not in DELETABLE:
        raise errors.unsupported(f"Operation Delete is not supported for {entity}; make it inactive instead.")
    existing = _check_token(company, entity, body)
    if entity == "Invoice" and _applied(company, existing["Id"]) > 0:
        raise errors.business_validation("This transaction is linked to a payment. Unlink the payment first.")
    del company.entities[entity][existing["Id"]]
    tombstone = {
        "status": "Deleted",
        "domain": "QBO",
        "Id": existing["Id"],
        "MetaData": {"LastUpdatedTime": _now(company)},
    }
    company.deleted.setdefault(entity, {})[existing["Id"]] = tombstone
    _after_write(company, entity, None, existing)
    return {"status": "Deleted", "domain": "QBO", "Id": existing["Id"]}


def void(company: CompanyState, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    if entity not in ("Invoice", "Payment"):
        raise errors.unsupported(f"Operation Void is not supported for {entity}.")
    existing = _check_token(company, entity, body)
    if entity == "Invoice" and _applied(company, existing["Id"]) > 0:
        raise errors.business_validation("This transaction is linked to a payment. Unlink the payment first.")
    voided = copy.deepcopy(existing)
    for line in voided.get("Line", []):
        if "Amount" in line:
            line["Amount"] = 0
    voided.update({"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"})
    if entity == "Payment":
        voided["UnappliedAmt"] = 0
    voided["SyncToken"] = str(int(existing["SyncToken"]) + 1)
    voided["MetaData"] = {"CreateTime": existing["MetaData"]["CreateTime"], "LastUpdatedTime": _now(company)}
    company.entities[entity][existing["Id"]] = voided
    _after_write(company, entity, voided, existing)
    return copy.deepcopy(voided)


def batch(company: CompanyState, body: Any) -> list[dict[str, Any]]:
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise errors.required_missing("BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        # The exact fault for an oversized batch is not documented; code/wording guessed.
        raise errors.invalid_property(f"Batch request has {len(items)} items; the maximum is {MAX_BATCH_ITEMS}")
    responses: list[dict[str, Any]] = []
    for item in items:
        bid = item.get("bId") if isinstance(item, dict) else None
        out: dict[str, Any] = {"bId": bid}
        try:
            if not isinstance(item, dict):
                raise errors.invalid_property("BatchItemRequest entries must be objects")
            if "Query" in item:
                out["QueryResponse"] = query(company, str(item["Query"]))
            else:
                keys = [k for k in item if k not in ("bId", "operation", "optionsData")]
                if len(keys) != 1:
                    raise errors.invalid_property("Each BatchItemRequest needs exactly one entity")
                entity = entity_name(keys[0])
                operation = str(item.get("operation", "create")).lower()
                if operation not in ("create", "update", "delete"):
                    raise errors.unsupported(f"Operation {operation} is not supported in batch.")
                payload = item[keys[0]]
                if operation == "create" and isinstance(payload, dict):
                    payload = {k: v for k, v in payload.items() if k != "Id"}
                out[entity] = write(company, entity, payload, operation=operation)
        except QboFault as fault:
            out["Fault"] = fault.fault_dict()
        responses.append(out)
    return responses


# ---- derivations and rules --------------------------------------------------------------------------------


def _ref(
    company: CompanyState, holder: dict[str, Any], key: str, target: str, *, required: bool = False, element: str = ""
) -> dict[str, Any] | None:
    ref = holder.get(key)
    element = element or key
    if ref in (None, {}, ""):
        if required:
            raise errors.required_missing(element)
        return None
    if not isinstance(ref, dict) or ref.get("value") in (None, ""):
        raise errors.invalid_property(f"Property Name:{element} must be an object with a value")
    obj = company.get(target, str(ref["value"]))
    if obj is None:
        raise errors.invalid_reference(element, str(ref["value"]))
    if obj.get("Active") is False:
        raise errors.object_not_found(target, str(ref["value"]))
    ref["value"] = str(ref["value"])
    name = obj.get("DisplayName") or obj.get("FullyQualifiedName") or obj.get("Name")
    if name:
        ref["name"] = name
    return obj


def _unique(
    company: CompanyState, entities: tuple[str, ...], field: str, value: str, self_id: str | None, what: str
) -> None:
    folded = value.strip().casefold()
    for entity in entities:
        for obj_id, obj in company.entities[entity].items():
            if entity == entities[0] and obj_id == self_id:
                continue
            if str(obj.get(field, "")).strip().casefold() == folded:
                raise errors.duplicate_name(what)


def _derive(
    company: CompanyState,
    entity: str,
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    allow_duplicate_doc: bool,
) -> None:
    self_id = existing["Id"] if existing else None
    obj.setdefault("Active", True) if entity not in ("Invoice", "Payment", "JournalEntry", *PURCHASING) else None
    if entity in SHARED_NAMES:
        _derive_person(company, entity, obj, existing, self_id)
    elif entity in NAMED_LISTS:
        name = str(obj.get("Name") or "").strip()
        if not name:
            raise errors.required_missing("Name")
        _unique(company, (entity,), "Name", name, self_id, NAMED_LISTS[entity])
        obj["FullyQualifiedName"] = name
        {"Item": _derive_item, "Class": _derive_class, "Account": _derive_account, "Term": _derive_term}[entity](
            company, obj
        )
    elif entity == "Invoice":
        _derive_invoice(company, obj, self_id, allow_duplicate_doc)
    elif entity == "Payment":
        _derive_payment(company, obj, self_id)
    elif entity == "JournalEntry":
        _derive_journal(company, obj)
    elif entity in PURCHASING:
        derive_purchasing(company, entity, obj)


def _derive_person(
    company: CompanyState, entity: str, obj: dict[str, Any], existing: dict[str, Any] | None, self_id: str | None
) -> None:
    display = str(obj.get("DisplayName") or "").strip()
    if not display:
        parts = [obj.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
        display = " ".join(str(p) for p in parts if p) or str(obj.get("CompanyName") or "")
    if not display:
        raise errors.required_missing("DisplayName")
    if ":" in display or "\t" in display or "\n" in display:
        raise errors.invalid_property("Property Name:DisplayName cannot contain ':', tab or newline")
    _unique(company, (entity, *[e for e in SHARED_NAMES if e != entity]), "DisplayName", display, self_id,
            "customer, vendor or employee")  # fmt: skip
    obj["DisplayName"] = display
    obj.setdefault("PrintOnCheckName", display)
    if entity == "Customer":
        parent = _ref(company, obj, "ParentRef", "Customer")
        obj["Job"] = parent is not None
        obj["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{display}" if parent else display
        _ref(company, obj, "SalesTermRef", "Term")
        obj["Balance"] = existing.get("Balance", 0) if existing else 0
        obj["BalanceWithJobs"] = obj["Balance"]
        obj.setdefault("Taxable", False)
    elif entity == "Vendor":
        obj["Balance"] = existing.get("Balance", 0) if existing else 0
    if entity in ("Customer", "Vendor"):
        obj.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})


def _derive_item(company: CompanyState, obj: dict[str, Any]) -> None:
    item_type = obj.get("Type")
    if not item_type:
        raise errors.required_missing("Type")
    if item_type not in ("Service", "NonInventory", "Inventory", "Category", "Group"):
        raise errors.invalid_property(f"Property Name:Type has an invalid value: {item_type}")
    if item_type in ("Service", "NonInventory", "Inventory"):
        _ref(company, obj, "IncomeAccountRef", "Account", required=True)
    _ref(company, obj, "ExpenseAccountRef", "Account", required=item_type == "Inventory")
    if item_type == "Inventory":
        _ref(company, obj, "AssetAccountRef", "Account", required=True)
        for name in ("InvStartDate", "QtyOnHand"):
            if obj.get(name) is None:
                raise errors.required_missing(name)
        obj["TrackQtyOnHand"] = True
    _ref(company, obj, "SalesTaxCodeRef", "TaxCode")
    _ref(company, obj, "ClassRef", "Class")
    obj.setdefault("Taxable", False)


def _derive_class(company: CompanyState, obj: dict[str, Any]) -> None:
    parent = _ref(company, obj, "ParentRef", "Class")
    obj["SubClass"] = parent is not None
    if parent:
        obj["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{obj['Name']}"


def _derive_account(company: CompanyState, obj: dict[str, Any]) -> None:
    if not obj.get("AccountType") and not obj.get("AccountSubType"):
        raise errors.required_missing("AccountType")
    if any(ch in str(obj["Name"]) for ch in '":'):
        raise errors.invalid_property('Property Name:Name cannot contain " or :')
    classes = {"Income": "Revenue", "Other Income": "Revenue", "Expense": "Expense", "Other Expense": "Expense",
               "Cost of Goods Sold": "Expense", "Equity": "Equity", "Accounts Payable": "Liability",
               "Credit Card": "Liability", "Long Term Liability": "Liability",
               "Other Current Liability": "Liability"}  # fmt: skip
    obj.setdefault("AccountType", "Expense")
    obj["Classification"] = classes.get(str(obj.get("AccountType")), "Asset")
    obj.setdefault("SubAccount", False)
    obj.setdefault("CurrentBalance", 0)


def _derive_term(company: CompanyState, obj: dict[str, Any]) -> None:
    if obj.get("DueDays") is None and obj.get("DayOfMonthDue") is None:
        raise errors.required_missing("DueDays")
    obj["Type"] = "STANDARD" if obj.get("DueDays") is not None else "DATE_DRIVEN"


def _today(company: CompanyState) -> str:
    return iso_time(company.clock())[:10]


def _derive_invoice(company: CompanyState, obj: dict[str, Any], self_id: str | None, allow_dup: bool) -> None:
    _ref(company, obj, "CustomerRef", "Customer", required=True)
    _ref(company, obj, "SalesTermRef", "Term")
    _ref(company, obj, "ClassRef", "Class")
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise errors.required_missing("Line")
    out: list[dict[str, Any]] = []
    subtotal = Decimal(0)
    discount = Decimal(0)
    for raw in lines:
        if not isinstance(raw, dict):
            raise errors.invalid_property("Property Name:Line entries must be objects")
        line = copy.deepcopy(raw)
        detail_type = line.get("DetailType")
        if detail_type == "SubTotalLineDetail":
            continue  # recomputed below
        if detail_type == "SalesItemLineDetail":
            detail = line.setdefault("SalesItemLineDetail", {})
            _ref(company, detail, "ItemRef", "Item", element="Line.SalesItemLineDetail.ItemRef")
            _ref(company, detail, "ClassRef", "Class", element="Line.SalesItemLineDetail.ClassRef")
            _ref(company, detail, "TaxCodeRef", "TaxCode", element="Line.SalesItemLineDetail.TaxCodeRef")
            if line.get("Amount") is None:
                if detail.get("Qty") is None or detail.get("UnitPrice") is None:
                    raise errors.required_missing("Line.Amount")
                line["Amount"] = _num(money(Decimal(str(detail["Qty"])) * Decimal(str(detail["UnitPrice"]))))
            subtotal += money(line["Amount"], "Line.Amount")
        elif detail_type == "GroupLineDetail":
            inner = (line.get("GroupLineDetail") or {}).get("Line") or []
            amount = sum((money(x.get("Amount", 0)) for x in inner), Decimal(0))
            line["Amount"] = _num(amount)
            subtotal += amount
        elif detail_type == "DiscountLineDetail":
            detail = line.get("DiscountLineDetail") or {}
            if detail.get("PercentBased") and detail.get("DiscountPercent") is not None:
                line["Amount"] = _num(money(subtotal * Decimal(str(detail["DiscountPercent"])) / 100))
            discount += money(line.get("Amount", 0), "Line.Amount")
        elif detail_type == "DescriptionOnly":
            line.setdefault("DescriptionLineDetail", {})
        else:
            raise errors.invalid_property(f"Property Name:Line.DetailType has an invalid value: {detail_type}")
        out.append(line)
    for number, line in enumerate(out, start=1):
        line["Id"] = str(number)
        line["LineNum"] = number
    out.append({"DetailType": "SubTotalLineDetail", "Amount": _num(subtotal), "SubTotalLineDetail": {}})
    obj["Line"] = out
    tax_detail = obj.get("TxnTaxDetail") or {}
    tax = money(tax_detail.get("TotalTax", 0), "TxnTaxDetail.TotalTax")
    obj["TxnTaxDetail"] = {**tax_detail, "TotalTax": _num(tax)}
    total = subtotal - discount + tax
    obj["TotalAmt"] = _num(total)
    applied = _applied(company, self_id) if self_id else Decimal(0)
    if applied > total:
        raise errors.business_validation("The transaction total is less than the payments applied to it.")
    obj["Balance"] = _num(total - applied)
    obj.setdefault("TxnDate", _today(company))
    obj.setdefault("DueDate", obj["TxnDate"])
    obj.setdefault("Deposit", 0)
    obj.setdefault("ApplyTaxAfterDiscount", False)
    obj.setdefault("PrintStatus", "NotSet")
    obj.setdefault("EmailStatus", "NotSet")
    obj.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
    if not obj.get("DocNumber"):
        obj["DocNumber"] = company.next_doc_number()
    elif len(str(obj["DocNumber"])) > 21:
        raise errors.invalid_property("Property Name:DocNumber exceeds 21 characters")
    elif company.reject_duplicate_doc_numbers and not allow_dup:
        for other in company.entities["Invoice"].values():
            if other["Id"] != self_id and str(other.get("DocNumber")) == str(obj["DocNumber"]):
                raise errors.duplicate_doc_number(str(obj["DocNumber"]), "Invoice", other["Id"])
    links = [lt for lt in obj.get("LinkedTxn", []) if lt.get("TxnType") != "Payment"]
    obj["LinkedTxn"] = links + _payment_links(company, self_id)


def _applied(company: CompanyState, invoice_id: str | None, *, skip_payment: str | None = None) -> Decimal:
    total = Decimal(0)
    for payment in company.entities["Payment"].values():
        if payment["Id"] == skip_payment:
            continue
        for line in payment.get("Line", []):
            for link in line.get("LinkedTxn", []):
                if link.get("TxnType") == "Invoice" and str(link.get("TxnId")) == invoice_id:
                    total += money(line.get("Amount", 0))
    return total


def _payment_links(company: CompanyState, invoice_id: str | None) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for payment in company.entities["Payment"].values():
        for line in payment.get("Line", []):
            if any(
                lk.get("TxnType") == "Invoice" and str(lk.get("TxnId")) == invoice_id
                for lk in line.get("LinkedTxn", [])
            ):
                found.append({"TxnId": payment["Id"], "TxnType": "Payment"})
                break
    return found


def _derive_payment(company: CompanyState, obj: dict[str, Any], self_id: str | None) -> None:
    customer = _ref(company, obj, "CustomerRef", "Customer", required=True)
    _ref(company, obj, "DepositToAccountRef", "Account")
    if obj.get("TotalAmt") is None:
        raise errors.required_missing("TotalAmt")
    total = money(obj["TotalAmt"], "TotalAmt")
    if total < 0:
        raise errors.business_validation("The payment amount cannot be negative.")
    applied = Decimal(0)
    per_invoice: dict[str, Decimal] = {}
    for line in obj.get("Line") or []:
        amount = money(line.get("Amount", 0), "Line.Amount")
        applied += amount
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") != "Invoice":
                raise errors.invalid_property(f"Property Name:LinkedTxn.TxnType {link.get('TxnType')} is not supported")
            invoice = company.get("Invoice", str(link.get("TxnId")))
            if invoice is None:
                raise errors.invalid_reference("Line.LinkedTxn.TxnId", str(link.get("TxnId")))
            if customer is not None and invoice["CustomerRef"]["value"] != customer["Id"]:
                raise errors.business_validation("The linked invoice belongs to a different customer.")
            link["TxnId"] = invoice["Id"]
            per_invoice[invoice["Id"]] = per_invoice.get(invoice["Id"], Decimal(0)) + amount
    for invoice_id, amount in per_invoice.items():
        invoice = company.entities["Invoice"][invoice_id]
        open_balance = money(invoice["TotalAmt"]) - _applied(company, invoice_id, skip_payment=self_id)
        if amount > open_balance:
            raise errors.business_validation(
                f"The amount applied to invoice {invoice_id} ({amount}) exceeds its open balance ({open_balance})."
            )
    if applied > total:
        raise errors.business_validation("The amount applied to transactions exceeds the payment total.")
    obj["TotalAmt"] = _num(total)
    obj["UnappliedAmt"] = _num(total - applied)
    obj.setdefault("Line", [])
    obj.setdefault("TxnDate", _today(company))
    obj.setdefault("ProcessPayment", False)
    obj.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})


def _derive_journal(company: CompanyState, obj: dict[str, Any]) -> None:
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise errors.required_missing("Line")
    debits = credits = Decimal(0)
    for number, line in enumerate(lines):
        detail = line.get("JournalEntryLineDetail")
        if line.get("DetailType") != "JournalEntryLineDetail" or not isinstance(detail, dict):
            raise errors.required_missing("Line.JournalEntryLineDetail")
        account = _ref(
            company, detail, "AccountRef", "Account", required=True, element="Line.JournalEntryLineDetail.AccountRef"
        )
        _ref(company, detail, "ClassRef", "Class", element="Line.JournalEntryLineDetail.ClassRef")
        entity = detail.get("Entity") or {}
        if entity:
            target = str(entity.get("Type", ""))
            if target not in SHARED_NAMES:
                raise errors.invalid_property(f"Property Name:Entity.Type has an invalid value: {target}")
            _ref(
                company,
                entity,
                "EntityRef",
                target,
                required=True,
                element="Line.JournalEntryLineDetail.Entity.EntityRef",
            )
        account_type = (account or {}).get("AccountType")
        if account_type == "Accounts Receivable" and entity.get("Type") != "Customer":
            raise errors.business_validation(
                "When you use Accounts Receivable, you must choose a customer in the Name field."
            )
        if account_type == "Accounts Payable" and entity.get("Type") != "Vendor":
            raise errors.business_validation(
                "When you use Accounts Payable, you must choose a vendor in the Name field."
            )
        amount = money(line.get("Amount", 0), "Line.Amount")
        posting = detail.get("PostingType")
        if posting == "Debit":
            debits += amount
        elif posting == "Credit":
            credits += amount
        else:
            raise errors.required_missing("Line.JournalEntryLineDetail.PostingType")
        line.setdefault("Id", str(number))
    if debits != credits:
        raise errors.business_validation("Please balance debits and credits.")
    obj.setdefault("TxnDate", _today(company))
    obj.setdefault("Adjustment", False)
    obj.setdefault("TxnTaxDetail", {})
    obj["TotalAmt"] = _num(debits)


def _after_write(company: CompanyState, entity: str, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    """Keep invoice balances/links and customer balances consistent after a write."""
    if entity not in ("Invoice", "Payment"):
        return
    invoice_ids: set[str] = set()
    customers: set[str] = set()
    for obj in (new, old):
        if obj is None:
            continue
        customers.add(str((obj.get("CustomerRef") or {}).get("value")))
        if entity == "Payment":
            for line in obj.get("Line", []):
                invoice_ids.update(
                    str(lk.get("TxnId")) for lk in line.get("LinkedTxn", []) if lk.get("TxnType") == "Invoice"
                )
    for invoice_id in invoice_ids:
        invoice = company.get("Invoice", invoice_id)
        if invoice is None:
            continue
        balance = _num(money(invoice["TotalAmt"]) - _applied(company, invoice_id))
        links = [lk for lk in invoice.get("LinkedTxn", []) if lk.get("TxnType") != "Payment"]
        links += _payment_links(company, invoice_id)
        if balance != invoice.get("Balance") or links != invoice.get("LinkedTxn"):
            invoice["Balance"] = balance
            invoice["LinkedTxn"] = links
            if company.bump_invoice_on_payment:
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                invoice["MetaData"]["LastUpdatedTime"] = _now(company)
    for customer_id in customers:
        customer = company.get("Customer", customer_id)
        if customer is None:
            continue
        owed = sum((money(i.get("Balance", 0)) for i in company.entities["Invoice"].values()
                    if i["CustomerRef"]["value"] == customer_id), Decimal(0))  # fmt: skip
        unapplied = sum((money(p.get("UnappliedAmt", 0)) for p in company.entities["Payment"].values()
                         if p["CustomerRef"]["value"] == customer_id), Decimal(0))  # fmt: skip
        customer["Balance"] = customer["BalanceWithJobs"] = _num(owed - unapplied)


# ---- time and purchasing (T6-T8) --------------------------------------------------------------------------


def derive_purchasing(company: CompanyState, entity: str, obj: dict[str, Any]) -> None:
    """TimeActivity, Bill, Purchase and PurchaseOrder: references must exist (2500), required fields are there
    (2020), TotalAmt is the lines' sum (NOTES.md: a Purchase needs PaymentType and AccountRef, a Bill VendorRef)."""
    obj.setdefault("TxnDate", _today(company))
    if entity == "TimeActivity":
        name_of = obj.get("NameOf")
        person = {"Employee": "EmployeeRef", "Vendor": "VendorRef"}.get(str(name_of))
        if person is None:
            raise errors.required_missing("NameOf")
        _ref(company, obj, person, str(name_of), required=True)
        _ref(company, obj, "CustomerRef", "Customer")
        _ref(company, obj, "ItemRef", "Item")
        _ref(company, obj, "ClassRef", "Class")
        if obj.get("BillableStatus") == "Billable" and not obj.get("CustomerRef"):
            raise errors.business_validation("A billable time activity needs a customer.")
        hours, minutes = obj.get("Hours"), obj.get("Minutes")
        if not isinstance(hours, int) or not isinstance(minutes, int) or hours < 0 or not 0 <= minutes < 60:
            raise errors.required_missing("Hours/Minutes")
        return
    if entity == "Bill":
        _ref(company, obj, "VendorRef", "Vendor", required=True)
        _ref(company, obj, "APAccountRef", "Account")
    elif entity == "Purchase":
        if obj.get("PaymentType") not in ("Cash", "Check", "CreditCard"):
            raise errors.required_missing("PaymentType")
        account = _ref(company, obj, "AccountRef", "Account", required=True)
        if obj["PaymentType"] == "CreditCard" and (account or {}).get("AccountType") != "Credit Card":
            raise errors.business_validation("A credit card purchase needs a credit card account.")
        payee = obj.get("EntityRef")
        if payee:
            target = str(payee.get("type", ""))
            if target not in SHARED_NAMES:
                raise errors.invalid_property(f"Property Name:EntityRef.type has an invalid value: {target}")
            _ref(company, obj, "EntityRef", target)
    else:
        _ref(company, obj, "VendorRef", "Vendor", required=True)
        _ref(company, obj, "ClassRef", "Class")
        obj.setdefault("POStatus", "Open")
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise errors.required_missing("Line")
    total = Decimal(0)
    for number, line in enumerate(lines, start=1):
        kind = line.get("DetailType")
        detail = line.get(kind) if isinstance(kind, str) else None
        if kind not in ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail") or not isinstance(detail, dict):
            raise errors.required_missing("Line.DetailType")
        if kind == "AccountBasedExpenseLineDetail":
            _ref(company, detail, "AccountRef", "Account", required=True, element=f"Line.{kind}.AccountRef")
        else:
            _ref(company, detail, "ItemRef", "Item", required=True, element=f"Line.{kind}.ItemRef")
            quantity, price = detail.get("Qty"), detail.get("UnitPrice")
            if quantity is not None and price is not None:
                expected = (money(quantity, "Qty") * money(price, "UnitPrice")).quantize(Decimal("0.01"))
                if money(line.get("Amount", 0), "Line.Amount") != expected:
                    raise errors.business_validation("Amount is not equal to UnitPrice * Qty.")
        _ref(company, detail, "CustomerRef", "Customer", element=f"Line.{kind}.CustomerRef")
        _ref(company, detail, "ClassRef", "Class", element=f"Line.{kind}.ClassRef")
        total += money(line.get("Amount", 0), "Line.Amount")
        line.setdefault("Id", str(number))
    obj["TotalAmt"] = _num(total)
    if entity == "Bill":
        obj["Balance"] = _num(total)
