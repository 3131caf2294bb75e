"""Provides CSV downloads that spreadsheets cannot turn into formulas, streamed row by row."""

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse

# A cell starting with one of these is run as a formula by Excel, LibreOffice or Sheets
# (OWASP "CSV injection"); a leading apostrophe makes it text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def escape_cell(value: object) -> object:
    """Make a text cell safe to open in a spreadsheet; numbers and empty cells pass unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> StreamingHttpResponse:
    """A streamed CSV attachment: memory stays flat however many rows the query returns."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # byte-order mark: Excel then reads the file as UTF-8
        yield writer.writerow([escape_cell(cell) for cell in header])
        for row in rows:
            yield writer.writerow([escape_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
