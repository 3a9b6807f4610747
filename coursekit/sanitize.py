"""The one allow-list HTML sanitiser for every page staff and students open (feedback, formgrader, reports).

Student text reaches those pages through many transforms (Markdown rendering, math to MathML, nbconvert's
and nbgrader's templates), and each can turn inert text into active HTML (``[x](javascript:...)`` is a
link only after Markdown). So cleaning is the LAST step, on HTML:

* ``clean_html`` cleans a fragment with nh3 (ammonia): only the tags and attributes listed here survive;
  no scripts, event handlers, styles sheets, frames, objects, forms, ``<base>`` or ``<meta>``; URLs only
  ``http(s)``, ``mailto`` and in-page anchors (``#...``); ``data:`` only as an image's ``src`` in a
  raster or SVG image type (an SVG shown by ``<img>`` runs no script); MathML without ``href``.
* ``markdown2html`` is nbconvert's Markdown filter followed by ``clean_html``. nbgrader's formgrade and
  feedback templates render Markdown cells without nbconvert's ``clean_html``, so nbgrader_config.py
  replaces both filters of every ``HTMLExporter``: every student-derived fragment the formgrader shows is
  cleaned as the template inserts it, after every preprocessor.
* ``clean_page`` cleans a whole page we write to disk (feedback, the similarity report): its ``<body>``
  as a fragment, its ``<head>`` reduced to the title, charset and style sheets; scripts survive only when
  their text is one the caller names (the kit's own). ``SanitizedHTMLExporter`` applies it to feedback
  (instead of cleaning each fragment: the same guarantee, half the work).
"""
from __future__ import annotations

import functools
import html
import re
import secrets
from typing import Any, Iterable

import nh3
from jinja2 import BytecodeCache, pass_context
from jinja2.bccache import Bucket
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

TEXT_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul", "var", "wbr", "section", "article", "header", "footer", "main", "nav",
    "aside", "center", "font", "strike", "tt", "big",
}
# Presentation MathML (what latex2mathml writes); no annotation-xml (it can hold HTML), no href anywhere.
MATHML_TAGS = {
    "math", "mi", "mn", "mo", "ms", "mspace", "mtext", "mrow", "mfrac", "msqrt", "mroot", "mstyle", "merror",
    "mpadded", "mphantom", "mfenced", "menclose", "msub", "msup", "msubsup", "munder", "mover",
    "munderover", "mmultiscripts", "mprescripts", "none", "mtable", "mtr", "mtd", "mlabeledtr", "semantics",
    "annotation",
}
MATHML_ATTRIBUTES = {
    "display", "mathvariant", "mathsize", "mathcolor", "mathbackground", "stretchy", "fence", "separator",
    "separators", "accent", "accentunder", "lspace", "rspace", "width", "height", "depth", "voffset",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame",
    "framespacing", "notation", "linethickness", "scriptlevel", "displaystyle", "minsize", "maxsize",
    "movablelimits", "symmetric", "form", "largeop", "encoding", "open", "close", "align", "numalign",
    "denomalign", "bevelled", "columnspan", "rowspan", "equalrows", "equalcolumns", "xmlns",
}
GLOBAL_ATTRIBUTES = {"class", "id", "title", "lang", "dir", "style", "align", "valign", "role",
                     "aria-label", "aria-hidden"}
TAG_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "name"},  # ``rel`` is set by the cleaner
    "img": {"src", "alt", "width", "height"},
    # data-sort: the sort key the similarity report's own script reads (inert without a script)
    "td": {"colspan", "rowspan", "headers", "scope", "data-sort"}, "th": {"colspan", "rowspan", "headers", "scope"},
    "col": {"span", "width"}, "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"}, "li": {"value"}, "details": {"open"},
    "time": {"datetime"}, "font": {"color", "size"}, "table": {"border", "cellpadding", "cellspacing"},
    **{tag: set(MATHML_ATTRIBUTES) for tag in MATHML_TAGS},
}
STYLE_PROPERTIES = {
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family", "text-align",
    "text-decoration", "vertical-align", "white-space", "width", "height", "max-width", "min-width",
    "padding", "padding-left", "padding-right", "padding-top", "padding-bottom", "margin", "margin-left",
    "margin-right", "margin-top", "margin-bottom", "border", "border-collapse", "border-spacing",
    "border-top", "border-bottom", "border-left", "border-right", "border-color", "border-style",
    "border-width", "display", "line-height", "list-style-type",
}
URL_SCHEMES = {"http", "https", "mailto", "data"}  # data: is narrowed to images below
DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
SAFE_URL = re.compile(r"(https?:|mailto:|#)", re.I)
SIBLING_PAGE = re.compile(r"[A-Za-z0-9_.%-]+\.html(#[A-Za-z0-9_.%-]*)?\Z")  # a feedback page beside this one
# inline CSS that could fetch or run something in some browser: url(), expression(), bindings, escapes
RISKY_STYLE = re.compile(r"url|expression|javascript|behavior|binding|image-set|import|\\|&#|/\*", re.I)


# Student ids and anchor names live in their own namespace (GitHub's ``user-content-``), so no student
# element can clobber a DOM global or an element id the page's own code or anchors rely on (nbgrader's
# formgrader script, ``#top``); links to a fragment (``#x``, ``page.html#x``) are rewritten alike, so a
# student's links reach the student's own anchors.
#
# The kit's anchors live outside it: an id or name that does not start with ``ID_PREFIX`` was made by the
# kit (nbgrader's table of contents and "(Top)" targets, the feedback summary's links, the headings of the
# instructor's locked cells), so no student element can carry it and a link to it can only land there.
# The kit writes them with a fresh secret mark (``kit_anchor_mark``); the cleaner moves the marked names
# into the student namespace like every other name, and ``_unmarked`` takes exactly those back out. A
# student cannot write a mark made after the submission, so cannot make a kit anchor. A page written by
# ``clean_page`` starts with its head and ``KIT_STAMP`` (no student text comes before the body):
# cleaning it again (the feedback summary is added to a cleaned page) keeps its names as they are.
ID_PREFIX = "user-content-"
ID_REFERENCE_LISTS = {"headers"}  # space-separated lists of ids
KIT_STAMP = '<meta name="coursekit-ids" content="student ids start with user-content-">'
KIT_RENAMED = "kit-"  # a kit name that itself starts with ID_PREFIX is renamed out of the student namespace


def kit_anchor_mark() -> str:
    """A fresh secret that marks the kit's own anchor names and links in HTML about to be cleaned."""
    return f"ck{secrets.token_hex(12)}-"


_KIT_NAME = re.compile(r"""(\s(?:id|name)\s*=\s*["']?)|(\shref\s*=\s*["']?#)""", re.I)


def mark_kit_anchors(fragment: str, mark: str) -> str:
    """``fragment`` (HTML the kit or the instructor wrote, never a student) with its ids, anchor names and
    in-page links marked as the kit's."""
    return _KIT_NAME.sub(lambda found: found.group(0) + mark, fragment)


def _unmarked(page: str, mark: str) -> str:
    """Cleaned HTML with the names and links marked by ``mark`` back in the kit's namespace."""
    if not mark:
        return page
    page = re.sub(re.escape(ID_PREFIX + mark) + f"({re.escape(ID_PREFIX)})?",
                  lambda found: KIT_RENAMED + found.group(1) if found.group(1) else "", page)
    return page.replace(mark, "")  # where the kit showed a marked name as text (nbgrader's "Grade cell: test_add")


def _prefixed(name: str) -> str:
    """``name`` in the student namespace; idempotent, so cleaning twice gives the same page."""
    return name if name.startswith(ID_PREFIX) else ID_PREFIX + name


def _with_prefixed_fragment(url: str) -> str:
    before, hash_, fragment = url.partition("#")
    return f"{before}#{_prefixed(fragment)}" if hash_ and fragment else url


@functools.lru_cache(maxsize=4096)
def _risky_style(value: str) -> bool:
    """Cached: generated tables repeat a few inline styles thousands of times."""
    return RISKY_STYLE.search(value) is not None


def _attribute(element: str, attribute: str, value: str, namespace: bool = True) -> str | None:
    """Narrow what the tag/attribute allow-list lets through: URLs, inline CSS, no MathML link of any
    kind; ids, anchor names and fragment links moved into the student namespace (``ID_PREFIX``), unless
    ``namespace`` is off (a page ``clean_page`` wrote before: its names are in their namespaces already)."""
    if not namespace and attribute in ("id", "name", *ID_REFERENCE_LISTS):
        return value
    if attribute == "style":
        return None if _risky_style(value) else value
    if attribute in ("href", "src"):
        url = value.strip()
        if element == "img" and attribute == "src" and DATA_IMAGE.match(url):
            return value
        if element == "a" and attribute == "href" and SIBLING_PAGE.match(url):
            return _with_prefixed_fragment(url) if namespace else value
        if element in ("a", "img") and SAFE_URL.match(url):
            return _with_prefixed_fragment(url) if url.startswith("#") and namespace else value
        return None
    if attribute == "id" or attribute == "name":
        return _prefixed(value)
    if attribute in ID_REFERENCE_LISTS:
        return " ".join(_prefixed(name) for name in value.split())
    return value


def _relative_url(url: str) -> str | None:
    """Relative URLs: in-page anchors, and a page beside this one (``name.html#anchor``, as the feedback
    summary links its notebook pages); any other path could reach the server that shows the page."""
    return url if url.startswith("#") or SIBLING_PAGE.match(url) else None


_SETTINGS: dict[str, Any] = dict(
    tags=TEXT_TAGS | MATHML_TAGS,
    clean_content_tags={"script", "style", "template", "noscript", "iframe", "object", "embed", "title",
                        "textarea", "xmp", "noembed", "noframes", "plaintext", "select", "svg"},
    attributes={"*": GLOBAL_ATTRIBUTES, **TAG_ATTRIBUTES},
    url_schemes=URL_SCHEMES,
    url_relative=_relative_url,
    filter_style_properties=STYLE_PROPERTIES,
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)
_CLEANER = nh3.Cleaner(**_SETTINGS, attribute_filter=_attribute)
_RECLEANER = nh3.Cleaner(**_SETTINGS, attribute_filter=functools.partial(_attribute, namespace=False))


class Cleaned(str):
    """HTML that ``clean_html`` produced; cleaning it again (nbconvert's ``markdown2html | clean_html``)
    would change nothing, so it is passed through. Only ``clean_html`` makes one."""


def clean_html(fragment: Any, kit_mark: str = "") -> str:
    """``fragment`` (student-derived HTML) reduced to the allow-list: no active content survives; names
    and links marked with ``kit_mark`` (``mark_kit_anchors``) end in the kit's namespace, all others in the
    student's."""
    if isinstance(fragment, Cleaned):
        return fragment
    if isinstance(fragment, bytes):
        fragment = fragment.decode("utf-8", errors="replace")
    text = fragment if isinstance(fragment, str) else str(fragment)
    return Cleaned(_unmarked(_CLEANER.clean(text), kit_mark))


def is_instructor_cell(cell: Any) -> bool:
    """A locked cell the gradebook knows (nbgrader's OverwriteCells has restored its source; a cell it
    does not know loses its grade id): its headings' anchors are the kit's."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return (isinstance(meta, dict) and meta.get("locked") is True and not meta.get("solution")
            and isinstance(meta.get("grade_id"), str) and bool(meta["grade_id"]))


@pass_context
def markdown2html(context: Any, source: str) -> str:
    """nbconvert's Markdown-to-HTML filter (attachments embedded), then cleaned; math in Markdown cells
    as MathML (``math_to_mathml``, as feedback shows them), so the formgrader's view shows it without
    MathJax."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    from coursekit.preprocessors.math_to_mathml import math_to_mathml

    cell = context.get("cell", {}) or {}
    path = context.get("resources", {}).get("metadata", {}).get("path", "")
    renderer = IPythonRenderer(escape=False, attachments=cell.get("attachments", {}), path=path,
                               anchor_link_text="¶")
    rendered = MarkdownWithMath(renderer=renderer).render(
        math_to_mathml(source) if cell.get("cell_type") == "markdown" else source)
    mark = kit_anchor_mark() if is_instructor_cell(cell) else ""
    return clean_html(mark_kit_anchors(rendered, mark) if mark else rendered, kit_mark=mark)


TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.S | re.I)
STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.S | re.I)


def _between(page: str, lower: str, start_tag: str, end_tag: str, last: bool = False) -> tuple[str, bool]:
    """The text between the first ``<start_tag ...>`` and the first (``last``: last) ``</end_tag``."""
    start = lower.find(f"<{start_tag}")
    while start >= 0 and lower[start + len(start_tag) + 1:start + len(start_tag) + 2] not in (">", " ", "\t", "\n", "/"):
        start = lower.find(f"<{start_tag}", start + 1)
    opened = lower.find(">", start) if start >= 0 else -1
    end = (lower.rfind if last else lower.find)(f"</{end_tag}", opened + 1) if opened >= 0 else -1
    return (page[opened + 1:end], True) if opened >= 0 and end >= 0 else ("", False)


_PAGE_START = f"<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n{KIT_STAMP}\n"  # only clean_page starts so


def clean_page(page: str, scripts: Iterable[str] = (), kit_mark: str = "") -> str:
    """A whole HTML page we generated, made inert: the body cleaned by ``clean_html`` (scripts whose text
    is exactly one of ``scripts`` kept, inline), the head reduced to its title and style sheets. Names and
    links marked with ``kit_mark`` end in the kit's namespace; a page this function wrote before
    (``KIT_STAMP``) keeps its names.

    The style sheets are the template's (nbconvert's, nbgrader's, the kit's); student text never reaches
    a page's ``<head>`` except through the title, which is re-escaped.
    """
    lower = page.lower()
    head, _ = _between(page, lower, "head", "head")
    body, found = _between(page, lower, "body", "body", last=True)
    body = body if found else page
    title = TITLE.search(head)
    title_text = html.escape(html.unescape(clean_html(title.group(1))) if title else "", quote=False)
    styles = "".join(f"<style>{css}</style>" for css in STYLE.findall(head) if "</" not in css)
    known = {text.strip() for text in scripts}
    kept: dict[str, str] = {}

    def hold(match: re.Match[str]) -> str:
        if match.group(1).strip() in known and "</" not in match.group(1):
            token = f"kept-script-{secrets.token_hex(16)}"
            kept[token] = f"<script>{match.group(1)}</script>"
            return token
        return ""

    body = SCRIPT.sub(hold, body) if known else body
    body = _unmarked(_RECLEANER.clean(body) if page.startswith(_PAGE_START) else clean_html(body), kit_mark)
    for token, script in kept.items():
        body = body.replace(token, script, 1)
    return f"{_PAGE_START}<title>{title_text}</title>\n{styles}\n</head>\n<body>\n{body}\n</body>\n</html>\n"


KIT_MARK_KEY = "coursekit_kit_mark"  # in an exporter's resources while a page is rendered
IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\salt\s*=)(?=[\s/>])", re.IGNORECASE)
MISSING_ALT = "No description has been provided for this image"  # nbconvert's own words
TOP_ANCHOR = '<a name="top"></a>'  # nbgrader's feedback template
TOP_LINK = '<a href="#top">(Top)</a>'


def _as_text(fragment: Any) -> str:
    return fragment.decode("utf-8", errors="replace") if isinstance(fragment, bytes) else str(fragment)


class TemplatesCompiledOnce(BytecodeCache):
    """Jinja's compiled templates kept in this process: every exporter builds a new Jinja environment (one
    per notebook of feedback), which would otherwise lex, parse and compile nbconvert's templates again
    (about 0.35 CPU-s a page). A template whose source changed is compiled again (Jinja checks a checksum)."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = TemplatesCompiledOnce()


class SanitizedHTMLExporter(HTMLExporter):
    """nbconvert's HTMLExporter whose whole output page goes through ``clean_page`` (feedback pages).

    The page is cleaned whole at the end, so its fragments are not cleaned one by one first (that would
    only repeat the work): the filters are nbconvert's own Markdown renderer and a pass-through.
    """

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED_TEMPLATES
        environment.filters["clean_html"] = _as_text
        environment.filters["markdown2html"] = self._markdown2html
        return environment

    @pass_context
    def _markdown2html(self, context: Any, source: str) -> str:
        """nbconvert's filter; an instructor cell's anchors marked as the kit's."""
        rendered = HTMLExporter.markdown2html(self, context, source)
        mark = context.get("resources", {}).get(KIT_MARK_KEY, "")
        return mark_kit_anchors(rendered, mark) if mark and is_instructor_cell(context.get("cell", {}) or {}) \
            else rendered

    def _preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """After every preprocessor (they look grade ids up): the grade ids the template turns into
        anchors and table-of-contents links, marked as the kit's (a fresh mark per page)."""
        nb, resources = super()._preprocess(nb, resources)
        mark = resources[KIT_MARK_KEY] = kit_anchor_mark()
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
            if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) and meta["grade_id"]:
                meta["grade_id"] = mark + meta["grade_id"]
        return nb, resources

    def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
                           ) -> tuple[str, dict[str, Any]]:
        output, resources = self._render(nb, resources, **kw)
        mark = resources.pop(KIT_MARK_KEY, "")
        if mark:  # nbgrader's template writes its "top" anchor first in the body, and "(Top)" links to it
            output = output.replace(TOP_ANCHOR, mark_kit_anchors(TOP_ANCHOR, mark), 1)
            output = output.replace(TOP_LINK, mark_kit_anchors(TOP_LINK, mark))
        return clean_page(output, kit_mark=mark), resources

    def _render(self, nb: Any, resources: dict[str, Any] | None, **kw: Any) -> tuple[str, dict[str, Any]]:
        """HTMLExporter.from_notebook_node without its last step, which parses the whole page with
        BeautifulSoup (more than half of a feedback page's CPU) to give ``alt`` text to images without one
        and ``tabindex`` to JupyterLab-template cells (nbgrader's feedback template is the classic one: it
        has none). ``clean_page`` parses the page anyway; images get the same ``alt`` text here."""
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        self.register_filter("highlight_code", self.filters.get("highlight_code",
                                                                Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata,
                                                                       parent=self, resources=resources))
        output, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return IMG_WITHOUT_ALT.sub(f'<img alt="{MISSING_ALT}"', output), resources
