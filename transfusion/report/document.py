"""A tiny document model (sections of paragraphs, lists, tables, figures, code) rendered to
Markdown and to one self-contained HTML file.

Every string is treated as untrusted text: the HTML renderer passes each through
``html.escape``; the Markdown renderer escapes ``& < >`` as entities, and in table cells also
``|`` and backslashes, so a model or dataset name can neither break a table nor inject markup.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Para:
    """A paragraph; ``lead`` (optional) is printed in bold before the text."""

    text: str
    lead: str = ""


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """A table of already formatted cells; ``numeric`` names right-aligned columns."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: frozenset[str] = frozenset()
    csv: Path | None = None  # the same rows as CSV, linked under the table


@dataclass
class Figure:
    path: Path
    caption: str
    csv: Path | None = None


@dataclass
class Code:
    text: str
    lang: str = ""
    summary: str = ""  # HTML: shown folded under this summary line when set


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"


@dataclass
class Doc:
    title: str
    sections: list[Section] = field(default_factory=list)
    subtitle: str = ""


# --------------------------------------------------------------------------- Markdown


def md_text(s: object) -> str:
    """Plain text safe in Markdown prose: ``<``, ``>`` and entity-like ``&`` as entities;
    backslash, backtick and ``*`` escaped; ``](`` broken so no link can form."""
    t = re.sub(r"&(?=#?\w+;)", "&amp;", str(s)).replace("<", "&lt;").replace(">", "&gt;")
    t = re.sub(r"([\\`*])", r"\\\1", t)
    return t.replace("](", "]\\(")


def md_cell(s: object) -> str:
    """Text safe inside a Markdown table cell (``|`` escaped, line breaks flattened)."""
    t = md_text(s).replace("|", "\\|")
    return " ".join(t.split()) if t.strip() else " "


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def render_markdown(doc: Doc, base: Path) -> str:
    """Markdown text; figure and CSV links relative to ``base`` (the report folder)."""
    out = [f"# {md_text(doc.title)}", ""]
    if doc.subtitle:
        out += [md_text(doc.subtitle), ""]
    out += ["Contents: " + " · ".join(f"[{md_text(s.title)}](#{s.anchor})" for s in doc.sections if s.level == 2), ""]
    for sec in doc.sections:
        out += [f"{'#' * sec.level} {md_text(sec.title)}", ""]
        for b in sec.blocks:
            if isinstance(b, Para):
                lead = f"**{md_text(b.lead)}** " if b.lead else ""
                out += [lead + md_text(b.text), ""]
            elif isinstance(b, Bullets):
                out += [f"- {md_text(i)}" for i in b.items] + [""]
            elif isinstance(b, Table):
                if b.caption:
                    out += [f"*{md_text(b.caption)}*", ""]
                out.append("| " + " | ".join(md_cell(c) for c in b.columns) + " |")
                out.append("| " + " | ".join("---:" if c in b.numeric else "---" for c in b.columns) + " |")
                out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in b.rows]
                out.append("")
                if b.csv is not None:
                    out += [f"CSV: [{md_text(b.csv.name)}]({_rel(b.csv, base)})", ""]
            elif isinstance(b, Figure):
                out += [f"![{md_cell(b.caption)}]({_rel(b.path, base)})", "", md_text(b.caption), ""]
                if b.csv is not None:
                    out += [f"Data: [{md_text(b.csv.name)}]({_rel(b.csv, base)})", ""]
            elif isinstance(b, Code):
                longest = max((len(m) for m in re.findall(r"`+", b.text)), default=0)
                fence = "`" * max(3, longest + 1)
                out += [fence + b.lang, b.text.rstrip("\n"), fence, ""]
            else:  # pragma: no cover - programming error
                raise TypeError(f"unknown block {type(b).__name__}")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#1b1f24;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.2em}h2{border-bottom:1px solid #eee;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.25em .55em;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
caption{caption-side:top;text-align:left;font-style:italic;padding-bottom:.3em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
nav a{margin-right:.8em}.small{font-size:.85em;color:#555}
"""


def _img_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(doc: Doc, base: Path) -> str:
    """One self-contained HTML page: figures embedded as base64 PNG, every string escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(doc.title)}</title>", f"<style>{_CSS}</style></head><body>", f"<h1>{e(doc.title)}</h1>"]
    if doc.subtitle:
        out.append(f'<p class="small">{e(doc.subtitle)}</p>')
    out.append("<nav>" + "".join(f'<a href="#{e(s.anchor)}">{e(s.title)}</a>' for s in doc.sections
                                 if s.level == 2) + "</nav>")
    for sec in doc.sections:
        out.append(f'<h{sec.level} id="{e(sec.anchor)}">{e(sec.title)}</h{sec.level}>')
        for b in sec.blocks:
            if isinstance(b, Para):
                lead = f"<strong>{e(b.lead)}</strong> " if b.lead else ""
                out.append(f"<p>{lead}{e(b.text)}</p>")
            elif isinstance(b, Bullets):
                out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
            elif isinstance(b, Table):
                num = [c in b.numeric for c in b.columns]
                rows = ["<table>"]
                if b.caption:
                    rows.append(f"<caption>{e(b.caption)}</caption>")
                rows.append("<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in b.columns) + "</tr></thead><tbody>")
                for row in b.rows:
                    rows.append("<tr>" + "".join(
                        f'<td class="num">{e(c)}</td>' if n else f"<td>{e(c)}</td>" for c, n in zip(row, num)) + "</tr>")
                rows.append("</tbody></table>")
                out.append("".join(rows))
                if b.csv is not None:
                    out.append(f'<p class="small">CSV: <a href="{e(_rel(b.csv, base))}">{e(b.csv.name)}</a></p>')
            elif isinstance(b, Figure):
                link = (f' Data: <a href="{e(_rel(b.csv, base))}">{e(b.csv.name)}</a>' if b.csv is not None else "")
                out.append(f'<figure><img alt="{e(b.caption)}" src="{_img_data(b.path)}">'
                           f"<figcaption>{e(b.caption)}{link}</figcaption></figure>")
            elif isinstance(b, Code):
                pre = f"<pre><code>{e(b.text)}</code></pre>"
                out.append(f"<details><summary>{e(b.summary)}</summary>{pre}</details>" if b.summary else pre)
            else:  # pragma: no cover - programming error
                raise TypeError(f"unknown block {type(b).__name__}")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
