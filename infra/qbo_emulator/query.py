"""The QBO query language subset: ``SELECT * | COUNT(*) | fields FROM Entity [WHERE …] [ORDERBY …]
[STARTPOSITION n] [MAXRESULTS n]``; conditions are ``=, !=, <, <=, >, >=, IN (…), LIKE '…%'`` joined by AND.

String comparisons are case-insensitive (as QBO name lookups are); a reference field (``CustomerRef``) compares on
its ``value``; ``MetaData.*Time``/dates compare as datetimes; numbers numerically.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.qbo_emulator.errors import parse_iso, query_error

MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_][\w.]*))"
)


@dataclass
class Condition:
    field: str
    op: str  # = != < <= > >= IN LIKE
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None: all fields
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise query_error(f"Encountered an unexpected character at column {pos + 1}")
        pos = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("\\'", "'").replace("''", "'")
        tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise query_error(f'Encountered "<EOF>", expected {what}')
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            raise query_error(f'Encountered "{token[1] if token else "<EOF>"}", expected {word}')

    def expect_punct(self, char: str) -> None:
        kind, value = self.next(f'"{char}"')
        if kind != "punct" or value != char:
            raise query_error(f'Encountered "{value}", expected "{char}"')

    def integer(self) -> int:
        kind, value = self.next("a number")
        if kind != "num" or not value.isdigit():
            raise query_error(f'Encountered "{value}", expected a positive integer')
        return int(value)

    def literal(self) -> Any:
        kind, value = self.next("a value")
        if kind == "str":
            return value
        if kind == "num":
            return float(value)
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise query_error(f'Encountered "{value}", expected a quoted value')

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        fields: list[str] | None = None
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == "COUNT":
            self.pos += 1
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            selected: list[str] = []
            star = False
            while True:
                kind, value = self.next("a field list")
                if kind == "punct" and value == "*":
                    star = True
                elif kind == "word":
                    selected.append(value)
                else:
                    raise query_error(f'Encountered "{value}" in the select list')
                if self.peek() != ("punct", ","):
                    break
                self.pos += 1
            fields = None if star else selected
        self.expect_keyword("FROM")
        kind, entity = self.next("an entity name")
        if kind != "word":
            raise query_error(f'Encountered "{entity}", expected an entity name')
        query = Query(entity=entity, count=count, fields=fields)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
            if self.keyword("OR"):
                raise query_error('Encountered "OR": only AND is supported')
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
            while True:
                kind, name = self.next("a field name")
                if kind != "word":
                    raise query_error(f'Encountered "{name}", expected a field name')
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                query.order_by.append((name, descending))
                if self.peek() != ("punct", ","):
                    break
                self.pos += 1
        if self.keyword("STARTPOSITION"):
            query.start_position = max(1, self.integer())
        if self.keyword("MAXRESULTS"):
            query.max_results = min(MAX_RESULTS, self.integer())  # Intuit caps silently (inferred)
        if self.peek() is not None:
            raise query_error(f'Encountered "{self.peek()[1]}" at the end of the query')  # type: ignore[index]
        return query

    def _by(self) -> bool:
        self.expect_keyword("BY")
        return True

    def condition(self) -> Condition:
        kind, name = self.next("a field name")
        if kind != "word":
            raise query_error(f'Encountered "{name}", expected a field name')
        if self.keyword("IN"):
            self.expect_punct("(")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.pos += 1
                values.append(self.literal())
            self.expect_punct(")")
            return Condition(name, "IN", values)
        if self.keyword("LIKE"):
            return Condition(name, "LIKE", [self.literal()])
        kind, op = self.next("an operator")
        if kind != "op":
            raise query_error(f'Encountered "{op}", expected an operator')
        return Condition(name, "!=" if op == "<>" else op, [self.literal()])


def parse_query(text: str) -> Query:
    if not text or not text.strip():
        raise query_error("empty query")
    return _Parser(text).parse()


# ---- evaluation ---------------------------------------------------------------------------------------------


def resolve(obj: dict[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        # field names are case-insensitive in QBO queries
        key = part if part in current else next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict) and "value" in current:
        return current["value"]
    if isinstance(current, dict) and "Address" in current:  # PrimaryEmailAddr: QBO filters on the address
        return current["Address"]
    return current


def _normalize(value: Any, other: Any) -> tuple[Any, Any]:
    """Bring two values to a comparable pair (datetimes, numbers, case-folded strings)."""
    if isinstance(value, bool) or isinstance(other, bool):
        return str(value).lower(), str(other).lower()
    try:
        return float(value), float(other)
    except (TypeError, ValueError):
        pass
    if isinstance(value, str) and isinstance(other, str) and re.match(r"^\d{4}-\d{2}-\d{2}", other):
        try:
            left: datetime = parse_iso(value)
            right: datetime = parse_iso(other)
            return left, right
        except ValueError:
            pass
    return str(value).casefold(), str(other).casefold()


def _like(value: Any, pattern: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, str(value), re.IGNORECASE | re.DOTALL) is not None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def matches(obj: dict[str, Any], condition: Condition) -> bool:
    value = resolve(obj, condition.field)
    if value is None:
        return False
    if condition.op == "LIKE":
        return _like(value, str(condition.values[0]))
    if condition.op == "IN":
        return any(_OPS["="](*_normalize(value, candidate)) for candidate in condition.values)
    try:
        return _OPS[condition.op](*_normalize(value, condition.values[0]))
    except TypeError:
        return False


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value).casefold())


def run_query(query: Query, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter and order (default: by numeric Id); paging is left to the caller."""
    selected = [obj for obj in objects if all(matches(obj, cond) for cond in query.where)]
    selected.sort(key=lambda obj: _sort_key(obj.get("Id")))
    for name, descending in reversed(query.order_by):
        selected.sort(key=lambda obj, name=name: _sort_key(resolve(obj, name)), reverse=descending)  # type: ignore[misc]
    if query.fields is not None:
        wanted = [f.split(".")[0] for f in query.fields]
        selected = [
            {k: v for k, v in obj.items() if k in wanted or k in ("Id", "SyncToken", "domain")} for obj in selected
        ]
    return selected
