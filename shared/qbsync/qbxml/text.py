"""Rendering of scalar values into qbXML text: Latin-1 safety, length limits, amounts, quantities, dates.

QuickBooks Desktop only stores ISO-8859-1 characters; anything else produces a parse error or ``?`` on its side.
We therefore make text safe *before* building XML, with one documented rule (:func:`latin1_safe`), and report
whether the text changed so callers can warn the user.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from qbsync.qbxml.errors import QbxmlFieldError

# Typographic characters mapped to a Latin-1 (mostly ASCII) equivalent before the generic rule runs.
PUNCTUATION_MAP: dict[str, str] = {
    "\u2018": "'",  # left single quote
    "\u2019": "'",  # right single quote / apostrophe
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',  # left double quote
    "\u201d": '"',  # right double quote
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # ellipsis
    "\u2022": "*",  # bullet
    "\u2039": "<",
    "\u203a": ">",
    "\u20ac": "EUR",
    "\u2122": "TM",
    "\u2002": " ",
    "\u2003": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u200b": "",  # zero-width space
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",
    "\ufeff": "",  # BOM / zero-width no-break space
    # Letters that NFKD does not decompose to a base letter.
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u0126": "H",
    "\u0127": "h",
    "\u0166": "T",
    "\u0167": "t",
}

REPLACEMENT = "?"

# C0 controls except TAB, LF, CR; DEL; C1 controls. XML 1.0 forbids most C0 controls and QuickBooks mangles the rest.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class SafeText:
    text: str
    changed: bool


def latin1_safe(value: str) -> SafeText:
    """Make ``value`` encodable in ISO-8859-1. The rule, applied in order:

    1. Unicode NFC normalisation (so ``e`` + combining diaeresis becomes the Latin-1 ``ë``);
    2. control characters are **stripped**: C0 except TAB/LF/CR, DEL and C1 (U+0080-U+009F);
    3. characters in :data:`PUNCTUATION_MAP` (smart quotes, dashes, ellipsis, ``€`` → ``EUR``, ``Ł`` → ``L``…)
       are replaced;
    4. any other character outside Latin-1 is NFKD-decomposed, its combining marks dropped, and kept if what
       remains is Latin-1 (``ź`` → ``z``, ``ﬁ`` → ``fi``); otherwise it becomes ``?``.

    Latin-1 characters (``ë``, ``ó``, ``ß``…) are never touched. ``changed`` is True when the output differs
    from the input (NFC-only changes count: what QuickBooks stores differs byte-wise).
    """
    text = unicodedata.normalize("NFC", value)
    text = _CONTROL_RE.sub("", text)
    out: list[str] = []
    for ch in text:
        if ord(ch) < 0x100:
            out.append(ch)
            continue
        mapped = PUNCTUATION_MAP.get(ch)
        if mapped is not None:
            out.append(mapped)
            continue
        decomposed = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if decomposed and all(ord(c) < 0x100 for c in decomposed) and not _CONTROL_RE.search(decomposed):
            out.append(decomposed)
        else:
            out.append(REPLACEMENT)
    result = "".join(out)
    return SafeText(result, result != value)


#: Free-text elements where TAB/LF/CR are kept; in every other field each run of them becomes one space.
MULTILINE_FIELDS = frozenset({"Memo", "Desc", "Notes", "SalesDesc", "PurchaseDesc", "JobDesc"})
_LINE_BREAK_RE = re.compile("[\t\r\n]+")


def text_field(field: str, value: str, limit: int | None) -> str:
    """Latin-1-safe ``value`` checked against ``limit`` characters (after the safety rule, which may lengthen it).

    Single-line fields (names, refs, address lines...) get TAB/LF/CR runs collapsed to one space.

    Raises :class:`QbxmlFieldError` naming ``field`` and ``limit`` when too long; empty strings are refused
    because QuickBooks treats an empty element as "clear this field" on Mod requests.
    """
    if not isinstance(value, str):
        raise QbxmlFieldError(field, f"expected text, got {type(value).__name__}")
    safe = latin1_safe(value).text
    if field.rsplit("/", 1)[-1] not in MULTILINE_FIELDS:
        safe = _LINE_BREAK_RE.sub(" ", safe)
    if safe == "":
        raise QbxmlFieldError(field, "must not be empty")
    if limit is not None and len(safe) > limit:
        raise QbxmlFieldError(field, f"is {len(safe)} characters, the limit is {limit}", limit=limit)
    return safe


def _as_decimal(field: str, value: Decimal | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise QbxmlFieldError(field, f"expected Decimal, got {type(value).__name__} (floats are refused)")
    dec = Decimal(value)
    if not dec.is_finite():
        raise QbxmlFieldError(field, "must be a finite number")
    return dec


def _fixed(field: str, value: Decimal | int, *, int_digits: int, max_places: int, min_places: int) -> str:
    dec = _as_decimal(field, value)
    try:
        exact = dec.quantize(Decimal(1).scaleb(-max_places))
    except InvalidOperation as exc:
        raise QbxmlFieldError(field, f"{value} is out of range") from exc
    if exact != dec:
        raise QbxmlFieldError(field, f"{value} has more than {max_places} decimal places; round it explicitly first")
    if abs(exact) >= Decimal(10) ** int_digits:
        raise QbxmlFieldError(field, f"{value} has more than {int_digits} integer digits")
    exponent = dec.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    places = max(min_places, min(max_places, -exponent))
    rendered = format(exact.quantize(Decimal(1).scaleb(-places)), "f")
    if rendered.startswith("-") and Decimal(rendered) == 0:
        rendered = rendered[1:]
    return rendered


def format_amount(field: str, value: Decimal | int) -> str:
    """AMTTYPE: up to 13 integer digits, always exactly 2 decimals. More precision is refused, never rounded."""
    return _fixed(field, value, int_digits=13, max_places=2, min_places=2)


def format_price(field: str, value: Decimal | int) -> str:
    """PRICETYPE / QUANTYPE / PERCENTTYPE: up to 10 integer digits and 5 decimals (trailing zeros dropped)."""
    return _fixed(field, value, int_digits=10, max_places=5, min_places=0)


format_quantity = format_price
format_percent = format_price


def format_date(field: str, value: date) -> str:
    """DATETYPE: ``YYYY-MM-DD``. A ``datetime`` is refused (its timezone would be silently lost)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise QbxmlFieldError(field, f"expected a date, got {type(value).__name__}")
    return value.isoformat()


def format_datetime(field: str, value: datetime) -> str:
    """DATETIMETYPE: ``YYYY-MM-DDThh:mm:ss`` plus ``±hh:mm`` when aware (microseconds dropped).

    A naive datetime is sent as-is and QuickBooks reads it in the desktop's local time.
    """
    if not isinstance(value, datetime):
        raise QbxmlFieldError(field, f"expected a datetime, got {type(value).__name__}")
    text = value.replace(microsecond=0, tzinfo=None).isoformat()
    offset = value.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text


def format_bool(value: bool) -> str:
    return "true" if value else "false"


_REQUEST_ID_RE = re.compile(r"^[\x21-\x7e]{1,50}$")


def check_request_id(value: str) -> str:
    """requestID: 1-50 printable ASCII characters (QuickBooks status 1060 beyond 50)."""
    if not isinstance(value, str) or not _REQUEST_ID_RE.match(value):
        raise QbxmlFieldError("requestID", "must be 1-50 printable ASCII characters without spaces", limit=50)
    return value


_ID_RE = re.compile(r"^[\x21-\x7e]{1,36}$")


def check_id(field: str, value: str) -> str:
    """IDTYPE (ListID/TxnID): at most 36 printable ASCII characters."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise QbxmlFieldError(field, "must be 1-36 printable ASCII characters", limit=36)
    return value


_GUID_RE = re.compile(r"^(0|\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\})$")


def format_guid(field: str, value: str) -> str:
    """GUIDTYPE: ``{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`` (braces added when missing)."""
    text = value.strip()
    if text != "0" and not text.startswith("{"):
        text = "{" + text + "}"
    if not _GUID_RE.match(text):
        raise QbxmlFieldError(field, f"{value!r} is not a GUID")
    return text.upper() if text != "0" else text
