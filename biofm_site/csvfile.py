"""The one CSV writer for every CSV file the portal produces.

Spreadsheets (Excel, LibreOffice, Google Sheets) run a cell that starts with
``=``, ``+``, ``-`` or ``@`` as a formula, and a leading tab or carriage return
can hide such a start; record ids, descriptions, molecule names and notes in
our CSV files come from users. Following OWASP's advice on CSV injection, a
text cell that starts with one of those characters gets a leading single quote
(so it shows as the text it is) and is written quoted.

Numbers stay numbers: an int or float is written as it is (``-0.5`` is not a
formula), and so is a string that is nothing but a decimal number, such as a
value a caller formatted itself; only other text is neutralised.

No Django import, so the compute modules can use it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
LINE_END = "\n"


def neutralise(value: Any) -> tuple[Any, bool]:
    """(the value to write, whether it was neutralised)."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value, True
    return value, False


class _Writer:
    def __init__(self, out: TextIO):
        self.out = out
        self.plain = csv.writer(out, lineterminator=LINE_END)
        self._scratch = io.StringIO()
        self._cell = {
            False: csv.writer(self._scratch, lineterminator=""),
            True: csv.writer(self._scratch, lineterminator="", quoting=csv.QUOTE_ALL),
        }

    def _encode(self, value: Any, quoted: bool) -> str:
        self._scratch.seek(0)
        self._scratch.truncate()
        self._cell[quoted].writerow([value])
        return self._scratch.getvalue()

    def writerow(self, row: Iterable[Any]) -> None:
        cells = [neutralise(value) for value in row]
        if not any(changed for _, changed in cells):
            self.plain.writerow([value for value, _ in cells])
            return
        # csv quotes per row, not per cell: encode each cell with the library's
        # own escaping and quote only the neutralised ones.
        self.out.write(",".join(self._encode(value, changed) for value, changed in cells) + LINE_END)


def write_csv(out: TextIO, header: Sequence[Any], rows: Iterable[Iterable[Any]]) -> None:
    """Write a header row and data rows (None becomes an empty cell)."""
    writer = _Writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)


def csv_text(header: Sequence[Any], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    write_csv(out, header, rows)
    return out.getvalue()


def dict_csv_text(fieldnames: Sequence[str], rows: Iterable[dict]) -> str:
    """Like csv.DictWriter: one column per field name, missing keys empty."""
    return csv_text(fieldnames, ([row.get(name) for name in fieldnames] for row in rows))
