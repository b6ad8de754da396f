"""Act as a QuickBooks user on a fake company saved by ``qbsync wc-sim --company-state FILE.json``:

    python -m infra.fake_qbd.admin --company-state desk.json pay D-1 [--amount 20.00] [--date 2026-11-15] [--ref CHK-1]
    python -m infra.fake_qbd.admin --company-state desk.json delete D-3      # an invoice (by RefNumber) or a TxnID
    python -m infra.fake_qbd.admin --company-state desk.json show            # invoices with balance and paid status
    python -m infra.fake_qbd.admin --company-state desk.json receive-po PO-1 # "Receive Items": raises QuantityOnHand
    python -m infra.fake_qbd.admin --company-state desk.json add-employee "Alice Field"
    python -m infra.fake_qbd.admin --company-state desk.json add-payroll-item "Regular Pay" --expense-account Payroll
    python -m infra.fake_qbd.admin --company-state desk.json add-inventory-item Widget --quantity 5
    python -m infra.fake_qbd.admin --company-state desk.json inventory       # inventory parts and quantities

What changes is what the next ``qbsync wc-sim`` run's QuickBooks has (reconciliation reads it back).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.fake_qbd.company import FakeCompany, StatusError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.fake_qbd.admin", description=__doc__)
    parser.add_argument("--company-state", type=Path, required=True)
    sub = parser.add_subparsers(dest="action", required=True)
    pay = sub.add_parser("pay", help="receive a payment for an invoice (default: its whole open balance)")
    pay.add_argument("invoice", help="RefNumber or TxnID")
    pay.add_argument("--amount")
    pay.add_argument("--date", help="YYYY-MM-DD (default: today)")
    pay.add_argument("--ref", help="the payment's reference (check number)")
    delete = sub.add_parser("delete", help="delete an invoice without payments, or a payment")
    delete.add_argument("transaction", help="an invoice's RefNumber, or any TxnID")
    sub.add_parser("show", help="print the invoices")
    receive = sub.add_parser("receive-po", help="receive every open line of a purchase order into inventory")
    receive.add_argument("purchase_order", help="RefNumber or TxnID")
    employee = sub.add_parser("add-employee", help="add an employee (for timesheets)")
    employee.add_argument("name")
    wage = sub.add_parser("add-payroll-item", help="add an hourly payroll wage item (for timesheets)")
    wage.add_argument("name")
    wage.add_argument("--expense-account", required=True, help="an existing expense account")
    part = sub.add_parser("add-inventory-item", help="add an inventory part")
    part.add_argument("name")
    part.add_argument("--quantity", default="0", help="quantity on hand")
    sub.add_parser("inventory", help="print the inventory parts and their quantities on hand")
    args = parser.parse_args(argv)

    if not args.company_state.exists():
        print(f"no company state at {args.company_state}", file=sys.stderr)
        return 1
    company = FakeCompany.from_json(args.company_state.read_text())
    try:
        if args.action == "pay":
            payment = company.pay_invoice(args.invoice, amount=args.amount, txn_date=args.date, ref_number=args.ref)
            print(json.dumps({"payment": payment.txn_id, "amount": str(payment.total_amount)}))
        elif args.action == "delete":
            invoice = company.find_invoice(args.transaction)
            company.delete_transaction(invoice.txn_id if invoice else args.transaction)
            print(json.dumps({"deleted": args.transaction}))
        elif args.action == "receive-po":
            print(json.dumps({"received": company.purchasing.receive_purchase_order(args.purchase_order)}))
        elif args.action == "add-employee":
            print(json.dumps({"employee": company.purchasing.add_employee(args.name).list_id}))
        elif args.action == "add-payroll-item":
            wage = company.purchasing.add_payroll_wage_item(args.name, args.expense_account)
            print(json.dumps({"payroll_item": wage.list_id}))
        elif args.action == "add-inventory-item":
            item = company.purchasing.add_inventory_item(args.name, args.quantity)
            print(json.dumps({"item": item.list_id}))
        elif args.action == "inventory":
            print(json.dumps(company.purchasing.inventory(), indent=1))
            return 0
        else:
            rows = [
                {"ref": i.ref_number, "txn_id": i.txn_id, "balance": str(i.balance_remaining), "paid": i.is_paid}
                for i in company.invoices()
            ]
            print(json.dumps(rows, indent=1))
            return 0
    except (KeyError, ValueError, ArithmeticError, StatusError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    args.company_state.write_text(company.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
