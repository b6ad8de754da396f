"""JSON bodies for the QBO API with every ``Decimal`` written as an exact JSON number (``12.50``, not ``"12.50"``).

``json.dumps`` refuses ``Decimal`` and a float could round a cent away: amounts are put in as placeholders and the
placeholders replaced by the decimals' exact text.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_NUMBER_TOKEN = re.compile(r'"\\u0000(\d+)\\u0000"')


def dumps(body: Any) -> str:
    numbers: list[str] = []

    def default(value: object) -> str:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{value} is not a finite amount")
            numbers.append(format(value, "f"))
            return f"\x00{len(numbers) - 1}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(body, default=default, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if "\\u0000" in _NUMBER_TOKEN.sub("", text):
        raise ValueError("text must not contain NUL characters")
    return _NUMBER_TOKEN.sub(lambda m: numbers[int(m.group(1))], text)
