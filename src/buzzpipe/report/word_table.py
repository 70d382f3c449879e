"""Write a paper-style ``Table`` as a Word document (``.docx``), with python-docx.

The layout is the one the HTML, CSV and LaTeX writers share: caption above, a rule above and
below the header and under the last row (booktabs style), errors in brackets on their own rows,
stars as superscripts, the notes in a smaller font under the table. The file's bytes depend on
the table alone (fixed times inside the zip and in the document properties), so the same
results give the same ``.docx``, as they give the same HTML.
"""

import io
import zipfile
from datetime import UTC, datetime

from buzzpipe.report.tables import Table

FONT = "Times New Roman"
BODY_POINTS = 10
NOTE_POINTS = 8
# The zip format's earliest time; any fixed value keeps the bytes reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DOCUMENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def table_docx(table: Table) -> bytes:
    """The table as the bytes of a ``.docx`` file: caption, table, notes."""
    import docx
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(BODY_POINTS)
    style.paragraph_format.space_after = Pt(0)
    if len(table.header) > 5:  # wide tables read better across a landscape page
        section = document.sections[0]
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    for section in document.sections:
        section.left_margin = section.right_margin = Cm(2)

    caption = document.add_paragraph()
    caption.paragraph_format.space_after = Pt(4)
    caption.add_run(table.title).bold = True

    grid = document.add_table(rows=1 + len(table.rows), cols=len(table.header))
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    # each row's cells taken once: python-docx's table.cell(row, column) rescans the whole
    # table, which made a 25-row table take a second
    grid_rows = [row.cells for row in grid.rows]
    for column, heading in enumerate(table.header):
        paragraph = grid_rows[0][column].paragraphs[0]
        paragraph.add_run(heading)
        if column:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for row, cells in zip(table.rows, grid_rows[1:], strict=True):
        label = cells[0].paragraphs[0].add_run(row.label)
        label.bold = row.kind == "section"
        for cell, grid_cell in zip(row.cells, cells[1:], strict=True):
            paragraph = grid_cell.paragraphs[0]
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.add_run(cell.text)
            if cell.stars:
                paragraph.add_run(cell.stars).font.superscript = True
    _rules(grid_rows[0], grid_rows[-1])

    for number, note in enumerate(table.notes):
        paragraph = document.add_paragraph()
        if number == 0:
            paragraph.paragraph_format.space_before = Pt(4)
        run = paragraph.add_run(("Notes: " if number == 0 else "") + note)
        run.font.size = Pt(NOTE_POINTS)

    properties = document.core_properties
    properties.title = table.title
    properties.author = properties.last_modified_by = "buzzpipe"
    properties.created = properties.modified = FIXED_DOCUMENT_TIME
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return _with_fixed_times(buffer.getvalue())


def _rules(header_cells, last_cells) -> None:
    """Booktabs rules: a thick line above the header, a thin one under it, a thick one at the
    foot; no other cell borders."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def border(cell, edge: str, eighths_of_a_point: int) -> None:
        properties = cell._tc.get_or_add_tcPr()
        borders = properties.find(qn("w:tcBorders"))
        if borders is None:
            borders = OxmlElement("w:tcBorders")
            properties.append(borders)
        line = OxmlElement(f"w:{edge}")
        line.set(qn("w:val"), "single")
        line.set(qn("w:sz"), str(eighths_of_a_point))
        line.set(qn("w:space"), "0")
        line.set(qn("w:color"), "000000")
        borders.append(line)

    for cell in header_cells:
        border(cell, "top", 12)
        border(cell, "bottom", 6)
    for cell in last_cells:
        border(cell, "bottom", 12)


def _with_fixed_times(data: bytes) -> bytes:
    """The same zip with every entry stamped at one fixed time (python-docx stamps the clock)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = entry.external_attr
            target.writestr(fixed, source.read(entry.filename))
    return buffer.getvalue()
