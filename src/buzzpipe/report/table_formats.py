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
    "\u2264": r"$\leq$",
    "\u2265": r"$\geq$",
    ">": r"$>$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and the few non-ASCII signs tables use)."""
    return "".join(_LATEX_SPECIAL.get(character, character) for character in text)


# An article's text block: LaTeX's article class at 10pt sets \textwidth to 345pt. Widths are
# estimated from the characters a cell prints, at a generous average width per character of
# each font size (computer modern: digits 5pt at 10pt, most letters narrower), plus the
# space between columns.
TEXT_WIDTH_PT = 345.0
_CHARACTER_PT = {"normalsize": 5.0, "small": 4.5, "footnotesize": 4.0}
_COLUMN_SEPARATION_PT = 8.0  # 2 x \tabcolsep of 4pt
_LONG_WORD_MARGIN = 1.15  # a word of wide letters ("complementarity") is wider than the average
_NUMBERED_HEADER = re.compile(r"^\((\d+)\) (.+)$")


def _printed_length(text: str, stars: str = "") -> float:
    return len(text) + 0.7 * len(stars)


def _column_widths(header: tuple[str, ...], rows: list[list[str]], size: str) -> list[float]:
    widths = []
    for index, heading in enumerate(header):
        cells = [heading, *(row[index] for row in rows)]
        longest = max(_printed_length(cell) for cell in cells)
        widths.append(longest * _CHARACTER_PT[size] + _COLUMN_SEPARATION_PT)
    return widths


def _latex_layout(table: Table) -> tuple[str, tuple[str, ...], list[str], str]:
    """Font size, header, column specification and environment (tabular or tabularx) that fit
    the table into an article's text width: the natural layout at the largest size that fits;
    otherwise numbered model headers abbreviated to "(1)", "(2)", ... with a key in the notes,
    and then the widest columns wrapped (tabularx X columns) at footnotesize."""
    rows = [
        [row.label, *(cell.text + cell.stars for cell in row.cells)]
        for row in table.rows
        if not _spans(row)
    ]
    key: list[str] = []
    header = table.header
    numbered = [_NUMBERED_HEADER.match(heading) for heading in header[1:]]
    for abbreviate in (False, True):
        if abbreviate:
            if not numbered or not all(numbered):
                break
            header = (header[0], *(f"({match[1]})" for match in numbered if match))
            key = [f"({match[1]}) {match[2]}" for match in numbered if match]
        for size in _CHARACTER_PT:
            if sum(_column_widths(header, rows, size)) <= TEXT_WIDTH_PT:
                spec = ["l"] + ["c"] * (len(header) - 1)
                return size, header, spec, "; ".join(key)
    size = "footnotesize"
    widths = _column_widths(header, rows, size)
    wrapped = set(range(len(widths)))
    while True:  # water filling: a column narrower than the wrapped columns' share keeps its width
        fixed = sum(widths[index] for index in range(len(widths)) if index not in wrapped)
        share = (TEXT_WIDTH_PT - fixed) / max(len(wrapped), 1)
        narrow = {index for index in wrapped if widths[index] <= share}
        if not narrow:
            break
        wrapped -= narrow
    # each wrapped column at least as wide as its longest word (TeX does not hyphenate a
    # paragraph's first word), the rest of the space shared in proportion to the natural widths
    cells = [[heading, *(row[index] for row in rows)] for index, heading in enumerate(header)]
    least = {
        index: max(len(word) for cell in cells[index] for word in (_words(cell) or [""]))
        * _CHARACTER_PT[size]
        * _LONG_WORD_MARGIN
        + _COLUMN_SEPARATION_PT
        for index in wrapped
    }
    room = TEXT_WIDTH_PT - sum(w for i, w in enumerate(widths) if i not in wrapped)
    spare = max(room - sum(least.values()), 0.0)
    extra = {index: widths[index] - least[index] for index in wrapped}
    total_extra = sum(extra.values()) or 1.0
    target = {index: least[index] + spare * extra[index] / total_extra for index in wrapped}
    mean = sum(target.values()) / max(len(target), 1)
    spec = []
    for index in range(len(widths)):
        align = r"\raggedright" if index == 0 else r"\centering"
        if index in wrapped:
            factor = target[index] / mean
            size_it = f"\\hsize={factor:.3f}\\hsize\\linewidth=\\hsize"
            # \hspace{0pt}: TeX may then hyphenate a cell's first word too
            spec.append(f">{{{size_it}{align}\\arraybackslash\\hspace{{0pt}}}}X")
        else:
            spec.append("l" if index == 0 else "c")
    return size, header, spec, "; ".join(key)


def _words(text: str) -> list[str]:
    """The pieces a line may not break inside (a cell breaks at spaces and underscores)."""
    return re.split(r"[\s_]+", text.strip()) if text.strip() else []


def _spans(row) -> bool:
    """A heading row (a section label, no cells): written across the whole table."""
    return row.kind == "section" and not any(cell.text for cell in row.cells)


def table_latex(table: Table) -> str:
    """A booktabs ``table`` environment that fits an article's text width (see
    ``_latex_layout``), with the notes under the rule (needs booktabs, and tabularx where a
    column wraps)."""
    size, header, spec, key = _latex_layout(table)
    wrapping = any(column.endswith("X") for column in spec)
    environment = "tabularx" if wrapping else "tabular"
    width = "{\\linewidth}" if wrapping else ""
    columns = "@{}" + "".join(spec) + "@{}"
    lines = [
        "% buzzpipe table; needs \\usepackage{booktabs}"
        + (" and \\usepackage{tabularx}" if wrapping else ""),
        r"\begin{table}[htbp]",
        r"\centering",
    ]
    if size != "normalsize":
        lines.append(f"\\{size}")
    lines += [
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\label{{{table.id}}}",
        r"\setlength{\tabcolsep}{4pt}",
        f"\\begin{{{environment}}}{width}{{{columns}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    previous_kind = None
    for row in table.rows:
        if row.kind in ("stat", "factor") and previous_kind not in ("stat", "factor"):
            lines.append(r"\midrule")
        if _spans(row):  # across the table; wrapped at the text width if longer than that
            fits = _printed_length(row.label) * _CHARACTER_PT[size] <= TEXT_WIDTH_PT
            column = "@{}l" if fits else r"@{}>{\raggedright\arraybackslash}p{\linewidth}@{}"
            label = latex_escape(row.label)
            lines.append(f"\\multicolumn{{{len(header)}}}{{{column}}}{{\\textit{{{label}}}}} \\\\")
        else:
            cells = [latex_escape(row.label)] + [_cell_latex(cell) for cell in row.cells]
            lines.append(" & ".join(cells) + r" \\")
        previous_kind = row.kind
    lines.append(r"\bottomrule")
    lines.append(f"\\end{{{environment}}}")
    notes = ([f"Columns: {key}."] if key else []) + list(table.notes)
    if notes:
        lines.append(r"\par\smallskip")
        lines.append(r"{\footnotesize\raggedright")
        lines.extend(f"{latex_escape(note)}\\par" for note in notes)
        lines.append("}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _cell_latex(cell: Cell) -> str:
    text = re.sub(r"(?<![\w$])-(?=\d)", "$-$", latex_escape(cell.text))  # a minus, not a hyphen
    text = text.replace(r"\_", r"\_\allowbreak{}")  # a long name may break after an underscore
    return f"{text}$^{{{cell.stars}}}$" if cell.stars else text
