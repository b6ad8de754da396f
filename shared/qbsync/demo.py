"""Demo data for trying qbsync locally (``qbsync demo``; the admin console's walkthrough in the README).

Two sides that fit together: what the local stack's QuickBooks Online emulator company already holds
(:data:`QUICKBOOKS_CUSTOMERS`, :data:`QUICKBOOKS_ITEMS`, seeded by ``infra.local_stack``), and what a SaaS app
sends (:data:`RECORDS`). Acme matches one QuickBooks customer by email; two QuickBooks customers share Northwind's
email, so Northwind becomes a match issue to resolve in the console, and its invoice waits until it is resolved.
"""

from __future__ import annotations

from typing import Any

QUICKBOOKS_CUSTOMERS: list[dict[str, str]] = [
    {"name": "Acme Ltd", "email": "billing@acme.example"},
    {"name": "Northwind Traders", "email": "ap@northwind.example"},
    {"name": "Northwind Traders (East)", "email": "ap@northwind.example"},
]
QUICKBOOKS_ITEMS: list[dict[str, str]] = [
    {"name": "Consulting", "sku": "CONS-1"},
    {"name": "Support plan", "sku": "SUP-1"},
]

RECORDS: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {"id": "demo-acme", "name": "Acme Ltd", "email": "billing@acme.example"},
        {"id": "demo-northwind", "name": "Northwind Traders", "email": "ap@northwind.example"},
    ],
    "items": [
        {"id": "demo-consulting", "name": "Consulting", "sku": "CONS-1", "price": "150.00"},
        {"id": "demo-support", "name": "Support plan", "sku": "SUP-1", "price": "90.00"},
    ],
    "invoices": [
        {
            "id": "demo-inv-1",
            "customer_id": "demo-acme",
            "date": "2026-11-01",
            "doc_number": "D-1001",
            "lines": [{"item_id": "demo-consulting", "quantity": "4", "rate": "150.00"}],
            "total": "600.00",
        },
        {
            "id": "demo-inv-2",
            "customer_id": "demo-northwind",
            "date": "2026-11-02",
            "doc_number": "D-1002",
            "lines": [
                {"item_id": "demo-consulting", "quantity": "2", "rate": "150.00"},
                {"item_id": "demo-support", "quantity": "1", "rate": "90.00"},
            ],
            "total": "390.00",
        },
    ],
}
