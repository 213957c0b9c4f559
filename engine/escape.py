"""Text escaped for where it lands: a terminal, a spreadsheet, a web page, a log line.

Names come from catalogs, specs and measured files that may come from someone else. Each
destination has its own dangerous characters, so each has one function here, used by every
command that writes there:

- :func:`terminal`: control characters (escape sequences, carriage returns, bells) shown as
  ``\\x1b``-style text, so a name cannot move the cursor, recolour or rewrite the screen;
- :func:`csv_cell`: a cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
  ``@``, tab, carriage return first) gets a leading ``'`` (OWASP's advice for CSV injection);
- :func:`script_json`: JSON safe inside an HTML ``<script>`` (``<``, ``>``, ``&`` and the
  line separators U+2028/U+2029 as ``\\u`` escapes);
- :func:`redact`: ``user:password@`` in a URL replaced by ``***@``, and the values of
  secret-bearing query parameters (``?token=``, ``X-Amz-Signature=``, a SAS ``sig=``...) by
  ``***``, wherever a URL is shown or recorded.

>>> terminal("a\\x1b[2Jb")
'a\\\\x1b[2Jb'
>>> csv_cell("=HYPERLINK(1)"), csv_cell("-3 tokens"), csv_cell(-3.0)
("'=HYPERLINK(1)", "'-3 tokens", -3.0)
>>> redact("s3://KEY:SECRET@bucket/cube.zarr")
's3://***@bucket/cube.zarr'
>>> redact("https://h/c.zarr?X-Amz-Signature=abc&part=1&sig=x%2F")
'https://h/c.zarr?X-Amz-Signature=***&part=1&sig=***'
"""

from __future__ import annotations

import json
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")  # up to the authority's last @
#: Query parameters that carry a credential: presigned S3 and GCS URLs, Azure SAS, OAuth and
#: API keys. A name matches if it contains one of these words (case-insensitive).
SECRET_PARAMETERS = (
    "token", "key", "secret", "password", "passwd", "pwd", "signature", "sig", "credential", "auth", "session",
)  # fmt: skip
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;#](?:[A-Za-z0-9_.~%-]*?(?:" + "|".join(SECRET_PARAMETERS) + r")[A-Za-z0-9_.~%-]*)=)[^&#;\s\"'<>\\]*",
    re.IGNORECASE,
)


def terminal(text: str) -> str:
    """``text`` with control characters shown, not obeyed (tab and newline kept)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def csv_cell(value):
    """A string cell a spreadsheet would evaluate, made inert; anything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def csv_frame(frame):
    """A pandas frame with every text cell (and column name) passed through :func:`csv_cell`."""
    frame = frame.rename(columns=lambda c: csv_cell(c) if isinstance(c, str) else c)
    for name in frame.columns:
        if frame[name].dtype == object or str(frame[name].dtype).startswith(("string", "str")):
            frame[name] = frame[name].map(csv_cell)
    return frame


def script_json(value) -> str:
    """JSON for inside a ``<script>`` element: nothing in it can close or confuse the element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for char, code in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, code)
    return text


def redact(text: str) -> str:
    """URLs in ``text`` without their credentials: ``scheme://user:password@host`` ->
    ``scheme://***@host``, and ``?token=...`` (any parameter in :data:`SECRET_PARAMETERS`) -> ``?token=***``."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    if "=" not in text:
        return text
    return _SECRET_QUERY.sub(lambda m: m.group("name") + "***", text)


class TerminalStream:
    """A text stream that writes everything through :func:`redact` and :func:`terminal` (the
    command line's stdout: tables, panels, JSON and CSV alike)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal(redact(text)))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)
