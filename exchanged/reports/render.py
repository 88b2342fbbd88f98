"""A report document into the formats an official reads and signs: HTML, Markdown, PDF, JSON.

HTML and Markdown come from Jinja2 templates (``templates/`` of this package); an
administrator puts a file of the same name into ``HOME/templates/`` to override one, most
often ``letterhead.html.j2`` for the ministry's letterhead. The templates run in Jinja2's
sandbox, and every value is escaped in HTML. The PDF is WeasyPrint's rendering of the HTML;
it fetches nothing from the network: only ``data:`` URIs and files inside the templates'
folders (the letterhead's emblem).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from exchanged.errors import ConfigError, UsageError
from exchanged.reports.document import Document, numeric, to_json

FORMATS = ("html", "md", "json", "pdf")
PACKAGE_TEMPLATES = Path(__file__).with_name("templates")


def environment(overrides: Path | None, *, html: bool) -> SandboxedEnvironment:
    loaders: list[Any] = []
    if overrides is not None and overrides.is_dir():
        loaders.append(FileSystemLoader(str(overrides)))
    loaders.append(PackageLoader("exchanged.reports", "templates"))
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=html,
                               undefined=StrictUndefined, keep_trailing_newline=True)
    env.globals.update(numeric=numeric, svg_base64=_svg_base64)
    env.filters["md_cell"] = lambda cell: str(cell).replace("|", "/")
    return env


def render(doc: Document, fmt: str, overrides: Path | None = None) -> bytes:
    """``doc`` in ``fmt`` (html, md, json, pdf)."""
    renderers: dict[str, Callable[[Document, Path | None], bytes]] = {
        "html": _html, "md": _markdown, "json": lambda d, _: to_json(d).encode("utf-8"),
        "pdf": _pdf,
    }
    if fmt not in renderers:
        raise UsageError(f"unknown format {fmt} (known: {', '.join(FORMATS)})")
    return renderers[fmt](doc, overrides)


def _html(doc: Document, overrides: Path | None) -> bytes:
    return _template(doc, "report.html.j2", overrides, html=True).encode("utf-8")


def _markdown(doc: Document, overrides: Path | None) -> bytes:
    text = _template(doc, "report.md.j2", overrides, html=False)
    return ("\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n").encode()


def _template(doc: Document, name: str, overrides: Path | None, *, html: bool) -> str:
    from jinja2 import TemplateError

    try:
        return environment(overrides, html=html).get_template(name).render(doc=doc)
    except TemplateError as e:
        where = f" (in {overrides})" if overrides is not None else ""
        raise ConfigError(f"the report template {name} cannot be rendered{where}: "
                          f"{type(e).__name__}: {e.message or ''}") from None


def _pdf(doc: Document, overrides: Path | None) -> bytes:
    # WeasyPrint loads Pango at import: only the commands that make a PDF pay for it
    import weasyprint
    from weasyprint.urls import URLFetcher

    allowed = [p.resolve() for p in (overrides, PACKAGE_TEMPLATES) if p is not None]

    class OwnFilesOnly(URLFetcher):  # type: ignore[misc]
        """``data:`` URIs and files inside the templates' folders; nothing else, ever."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("file://"):
                path = Path(url[len("file://"):].split("?")[0]).resolve()
                if not (path.is_file() and any(path.is_relative_to(f) for f in allowed)):
                    raise ValueError("the report may use only its own templates' files")
            return super().fetch(url, headers)

    html = _html(doc, overrides).decode("utf-8")
    base = str((overrides if overrides is not None and overrides.is_dir()
                else PACKAGE_TEMPLATES).resolve()) + "/"
    fetcher = OwnFilesOnly(allowed_protocols={"data", "file"}, allow_redirects=False)
    pdf = weasyprint.HTML(string=html, base_url=base, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def _svg_base64(svg: str) -> str:
    return base64.b64encode(svg.encode("utf-8")).decode("ascii")
