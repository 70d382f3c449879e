"""Write a paper-style ``Table`` as HTML, CSV or LaTeX (booktabs), one layout for all three."""

import csv
import io
import re
from html import escape

from buzzpipe.csv_safety import spreadsheet_safe
from buzzpipe.report.formatting import plain_numbers
from buzzpipe.report.tables import Cell, Table


def table_html(table: Table) -> str:
    """An HTML ``<table>`` with caption, header, body and the notes in its footer (in a block
    that wraps to the table's width rather than widening it)."""
    lines = [f'<table id="{escape(table.id)}" class="paper">']
    lines.append(f"<caption>{escape(table.title)}</caption>")
    lines.append(
        "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr></thead>"
    )
    lines.append("<tbody>")
    for row in table.rows:
        if row.kind == "section" and not any(cell.text for cell in row.cells):
            # a heading row spans the table, so a long heading never widens the label column
            span = len(row.cells) + 1
            lines.append(
                f'<tr class="section"><th scope="rowgroup" colspan="{span}">'
                f"{escape(row.label)}</th></tr>"
            )
            continue
        cells = "".join(f"<td>{_cell_html(cell)}</td>" for cell in row.cells)
        lines.append(f'<tr class="{row.kind}"><th scope="row">{escape(row.label)}</th>{cells}</tr>')
    lines.append("</tbody>")
    if table.notes:
        notes = " ".join(escape(note) for note in table.notes)
        span = len(table.header)
        lines.append(
            f'<tfoot><tr><td colspan="{span}" class="notes"><div>Notes: {notes}</div></td></tr>'
            "</tfoot>"
        )
    lines.append("</table>")
    return "\n".join(lines)


_NO_BREAK = re.compile(r"\[[^\]]*\]|[<=] (?=[\d\u2212-])|\S+ = ")


def keep_together(text: str) -> str:
    """Non-breaking spaces where a line break would split a number from its interval's other
    end or from its sign: inside [low, high], after "<" and "=", and around "=" in "z = 1.8"."""
    return _NO_BREAK.sub(lambda match: match.group(0).replace(" ", "\u00a0"), text)


def _cell_html(cell: Cell) -> str:
    text = escape(keep_together(cell.text))
    if cell.stars:  # the stars stay on the number's line
        return f'<span class="number">{text}<sup>{escape(cell.stars)}</sup></span>'
    return text


def table_csv(table: Table) -> str:
    """CSV in the printed layout (stars appended, errors on their own rows); the cells' numbers
    are written with an ASCII minus and no thousands separator, so a script can read them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def write(cells: list[str]) -> None:  # no cell a spreadsheet would run as a formula
        writer.writerow([spreadsheet_safe(cell) for cell in cells])

    write([table.title])
    write(list(table.header))
    for row in table.rows:
        write([row.label, *(plain_numbers(cell.text) + cell.stars for cell in row.cells)])
    for note in table.notes:
        write([note])
    return buffer.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\u2212": "$-$",
    "\u2013": "--",
    "\u00b2": "$^2$",
    "\u00d7": r"$\times$",
    "\u221e": r"$\infty$",
    "\u222a": r"$\cup$",
    "\u03c7": r"$\chi$",
    "<": r"$<$",
    ">": r"$>$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and the few non-ASCII signs tables use)."""
    return "".join(_LATEX_SPECIAL.get(character, character) for character in text)


def table_latex(table: Table) -> str:
    """A booktabs ``table`` environment with the notes under the rule (needs booktabs)."""
    columns = "l" + "c" * (len(table.header) - 1)
    lines = [
        "% buzzpipe table; needs \\usepackage{booktabs}",
        r"\begin{table}[htbp]",
        r"\centering",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\label{{{table.id}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in table.header) + r" \\",
        r"\midrule",
    ]
    previous_kind = None
    for row in table.rows:
        if row.kind in ("stat", "factor") and previous_kind not in ("stat", "factor"):
            lines.append(r"\midrule")
        cells = [latex_escape(row.label)] + [_cell_latex(cell) for cell in row.cells]
        lines.append(" & ".join(cells) + r" \\")
        previous_kind = row.kind
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    for note in table.notes:
        lines.append(f"\\par\\footnotesize {latex_escape(note)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _cell_latex(cell: Cell) -> str:
    text = re.sub(r"(?<![\w$])-(?=\d)", "$-$", latex_escape(cell.text))  # a minus, not a hyphen
    return f"{text}$^{{{cell.stars}}}$" if cell.stars else text
