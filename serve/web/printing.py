"""The list as a PDF for A4 paper, drawn in-process with fpdf2 (pure Python: no browser, no system library, no subprocess).

Landscape A4, at most ``per_page`` items a page, every page with the list's
header and a signature block. The standard PDF fonts cover Latin-1 (English,
Spanish, French, Portuguese); other characters are replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from serve.web.facts import port_label


def _latin1(text: object) -> str:
    return str(text if text is not None else "").replace("→", "->").replace("—", "-").encode("latin-1", "replace").decode("latin-1")


def _item_cells(item: dict[str, Any], reason_text: Callable[[str], str], band_name: Callable[[str], str], gettext: Callable[[str], str],
                risk_chance: Callable[[float | None], str] = lambda _: "") -> list[str]:
    m = item.get("m") or {}
    when = m.get("eta")
    reasons = item.get("reasons") or []
    return [
        str(item.get("rank") or "+"),
        f"{item['container_number']}\n{m.get('container_type', '')}",
        f"{m.get('vessel_imo', '')} / {m.get('voyage', '')}\nETA {when:%Y-%m-%d %H:%M}" if when else "",
        m.get("master_bl", ""),
        f"{m.get('shipper_name', '')}\n{m.get('consignee_name', '')}",
        f"{m.get('goods_description') or ''}\nHS {m.get('hs_code', '')}",
        " -> ".join(item.get("route") or []),
        f"{gettext(item['source'])}\n{gettext(item['exam_type']) if item.get('exam_type') else ''}",
        f"{band_name(item['band'])}\n{risk_chance(item.get('risk_probability'))}".strip(),
        reason_text(reasons[0]) if reasons else "",
        "",
    ]


def _fit(pdf: FPDF, text: str, width_mm: float, *, lines: int = 2) -> str:
    """``text`` cut to at most ``lines`` lines that each fit ``width_mm`` (long words and lines end with '...')."""
    room = width_mm - 2.2
    out: list[str] = []
    for paragraph in text.split("\n"):
        words, line = paragraph.split(" "), ""
        for word in words:
            candidate = f"{line} {word}".strip()
            if pdf.get_string_width(candidate) <= room or not line:
                line = candidate
            else:
                out.append(line)
                line = word
        out.append(line)
    out = out[:lines] if len(out) <= lines else out[: lines - 1] + [out[lines - 1] + "..."]
    fitted = []
    for line in out:
        while line and pdf.get_string_width(line) > room:
            line = line[:-4] + "..."
        fitted.append(line)
    return "\n".join(fitted)


def list_pdf(record: dict[str, Any], items: Sequence[dict[str, Any]], *, gettext: Callable[[str], str], reason_text: Callable[[str], str],
             band_name: Callable[[str], str], printed_by: str, printed_at: datetime, per_page: int = 25,
             risk_chance: Callable[[float | None], str] = lambda _: "") -> bytes:
    """PDF bytes of the list ``record`` (as the API serves it) with its ``items`` (details attached by the list page)."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_margins(8, 8, 8)
    pdf.set_auto_page_break(auto=True, margin=8)
    pdf.set_title(_latin1(f"{gettext('Inspection list')} {record['port']} {record['list_date']}"))
    headings = [gettext(h) for h in ("#", "Container", "Vessel / voyage", "B/L", "Shipper / consignee", "Goods", "Route", "Source / exam",
                                     "Risk", "Reasons", "Result")]
    widths = (7, 24, 32, 24, 40, 40, 30, 20, 16, 38, 10)
    chunks = [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]
    for number, chunk in enumerate(chunks, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 13)
        pdf.cell(0, 7, _latin1(f"{gettext('Inspection list')} - {port_label(record['port'])} - {record['list_date']}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 5, _latin1(f"{gettext('Model')} {record['model_name']} v{record['model_version']} - {gettext('Rule set')} "
                               f"v{record['ruleset_version']} - sha256 {record['content_sha256'][:16]} - {gettext('Page')} {number}/{len(chunks)}"),
                 new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 6.0)
        with pdf.table(col_widths=widths, line_height=2.5, padding=0.5, headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
                       first_row_as_headings=True) as table:
            table.row([_latin1(h) for h in headings])
            for item in chunk:
                table.row([_fit(pdf, _latin1(c), w) for c, w in zip(_item_cells(item, reason_text, band_name, gettext, risk_chance), widths, strict=True)])
        pdf.ln(2)
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 6, _latin1(f"{gettext('Printed by')} {printed_by}, {printed_at:%Y-%m-%d %H:%M} UTC"), new_x="LMARGIN", new_y="NEXT")
        for label in (gettext("Team leader (name, signature)"), gettext("Customs officer (name, signature)"), gettext("Date and time")):
            pdf.cell(90, 8, _latin1(label + ":"), border="B")
            pdf.cell(5, 9, "")
        pdf.ln(10)
    return bytes(pdf.output())
