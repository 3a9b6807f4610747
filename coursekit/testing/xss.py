"""Hostile HTML for tests and benchmarks of the page sanitiser (``coursekit.sanitize``).

``PAYLOADS`` covers the classes of OWASP's XSS filter-evasion cheat sheet (written here, not copied):
script tags, event handlers, ``javascript:``/``vbscript:``/``data:`` URLs with encodings, whitespace and
case tricks, SVG and MathML, style and ``expression()``, frames/objects/embeds, meta refresh, ``<base>``,
malformed and namespace-confused markup, entity-encoded text. Every payload that runs calls
``alert('XSS-<n>')`` or sets ``window.xssRan``, so a browser can tell whether one ran.
``hostile_notebook_parts`` places them in every place a student controls; ``active_content`` lists what
in a page could run.
"""
from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser

import nbformat
from nbformat.v4 import new_code_cell, new_raw_cell

_SVG_SCRIPT = "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(\"XSS-svg-file\")'><script>alert('XSS-svg-file2')</script></svg>"
_B64_PAGE = base64.b64encode(b"<script>alert('XSS-b64')</script>").decode()
_JS_ENTITIES = "".join(f"&#{ord(c)};" for c in "javascript:")
_JS_ENTITIES_PADDED = "".join(f"&#000{ord(c)}" for c in "javascript:")
_JS_HEX_NO_SEMI = "".join(f"&#x{ord(c):x}" for c in "javascript:")

# Names a page relies on: nbgrader's grade ids and feedback anchors (``test_add``, ``top``), the
# formgrader's elements (``statusmessage``, ``notebook-container``), DOM globals a script reads.
CLOBBERED = ("test_add", "top", "toc", "statusmessage", "notebook-container", "clobber-alert", "document")
CLOBBER_PAYLOADS: list[str] = [
    "<a id='test_add' href='#top'>clobber76</a><a name='top'>clobber77</a>",
    "<img id='statusmessage' name='statusmessage' src='data:image/png;base64,iVBORw0KGgo='>",
    "<div id='notebook-container'><h2 id='toc'>clobber78</h2></div>",
    "<math id='clobber-alert'><mi id='document'>x</mi></math>",
    "<table><tr><th id='test_add'>h</th></tr><tr><td headers='test_add top'>clobber79</td></tr></table>",
    "## test_add",  # nbconvert's Markdown renderer gives the heading id="test_add"
    "[clobber80](adder.html#test_add) [clobber81](#toc)",
]

PAYLOADS: list[str] = [
    # script tags
    "<script>alert('XSS-1')</script>",
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    "<script/xss src='https://xss.example/x.js'></script>",
    "<<SCRIPT>alert('XSS-2');//<</SCRIPT>",
    "<scr<script>ipt>alert('XSS-3')</scr</script>ipt>",
    "<script>window.xssRan=1</script>",
    # event handlers
    "<img src=x onerror=alert('XSS-4')>",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<body onload=alert('XSS-5')>",
    "<svg/onload=alert('XSS-6')>",
    "<div onmouseover=\"alert('XSS-7')\">hover</div>",
    "<input autofocus onfocus=alert('XSS-8')>",
    "<details open ontoggle=alert('XSS-9')><summary>x</summary></details>",
    "<video><source onerror=\"alert('XSS-10')\"></video>",
    "<marquee onstart=alert('XSS-11')>m</marquee>",
    # javascript:, vbscript:, data: URLs with case, whitespace and encoding tricks
    "<a href=\"javascript:alert('XSS-12')\">link12</a>",
    "<a href=\"JaVaScRiPt:alert('XSS-13')\">link13</a>",
    "<a href=\"jav&#x09;ascript:alert('XSS-14')\">link14</a>",
    "<a href=\"jav\tascript:alert('XSS-15')\">link15</a>",
    "<a href=\" &#14;  javascript:alert('XSS-16')\">link16</a>",
    f"<a href=\"{_JS_ENTITIES}alert('XSS-17')\">link17</a>",
    f"<a href=\"{_JS_ENTITIES_PADDED}alert('XSS-18')\">link18</a>",
    f"<a href=\"{_JS_HEX_NO_SEMI}alert('XSS-19')\">link19</a>",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS-20');\">",
    "<img src=javascript:alert('XSS-21')>",
    "<a href=\"vbscript:msgbox('XSS-22')\">link22</a>",
    f"<a href=\"data:text/html;base64,{_B64_PAGE}\">link23</a>",
    "<a href=\"data:text/html,<script>alert('XSS-24')</script>\">link24</a>",
    "[md-link25](javascript:alert('XSS-25'))",
    "[md-link26](JAVASCRIPT:alert('XSS-26'))",
    "[md-link27](&#106;avascript:alert('XSS-27'))",
    "[md-link28](<javascript:alert('XSS-28')>)",
    "![md-img29](javascript:alert('XSS-29'))",
    f"[md-link30](data:text/html;base64,{_B64_PAGE})",
    "[md-ref31][r31]\n\n[r31]: javascript:alert('XSS-31')",
    "<javascript:alert('XSS-32')>",
    # SVG and MathML
    "<svg><script>alert('XSS-33')</script></svg>",
    "<svg><a xlink:href=\"javascript:alert('XSS-34')\"><text x='0' y='20'>svg34</text></a></svg>",
    "<svg><animate onbegin=alert('XSS-35') attributeName=x dur=1s></svg>",
    "<svg><set attributeName='href' to='javascript:alert(36)'/></svg>",
    "<math><mtext><a href=\"javascript:alert('XSS-37')\">math37</a></mtext></math>",
    "<math href=\"javascript:alert('XSS-38')\"><mi>x</mi></math>",
    "<math><mi xlink:href=\"javascript:alert('XSS-39')\">y</mi></math>",
    "<math><maction actiontype='statusline' xlink:href=\"javascript:alert('XSS-40')\"><mi>z</mi></maction></math>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('XSS-41')></style></mglyph></table></mtext></math>",
    "<math><annotation-xml encoding='text/html'><img src=x onerror=alert('XSS-42')></annotation-xml></math>",
    "$\\href{javascript:alert('XSS-43')}{x}$",
    "$$\\href{javascript:alert('XSS-44')}{y}$$",
    # style and expression()
    "<div style=\"background:url(javascript:alert('XSS-45'))\">style45</div>",
    "<div style=\"width: expression(alert('XSS-46'))\">style46</div>",
    "<div style=\"behavior: url(xss.htc); -moz-binding: url(xss.xml#x)\">style47</div>",
    "<style>@import 'https://xss.example/x.css'; body{background:url(\"javascript:alert('XSS-48')\")}</style>",
    "<link rel=stylesheet href=\"javascript:alert('XSS-49')\">",
    "<div style=\"position:fixed;top:0;left:0;width:100%;height:100%\">overlay50</div>",
    # frames, objects, embeds
    "<iframe src=\"javascript:alert('XSS-51')\"></iframe>",
    "<iframe srcdoc=\"<script>alert('XSS-52')</script>\"></iframe>",
    "<object data=\"javascript:alert('XSS-53')\"></object>",
    f"<embed src=\"data:image/svg+xml;base64,{base64.b64encode(_SVG_SCRIPT.encode()).decode()}\">",
    "<frameset><frame src=\"javascript:alert('XSS-55')\"></frameset>",
    # meta refresh, base
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('XSS-56')\">",
    f"<meta http-equiv=\"refresh\" content=\"0;url=data:text/html;base64,{_B64_PAGE}\">",
    "<base href=\"javascript:alert('XSS-58')//\">",
    "<base href=\"https://xss.example/\">",
    # malformed tags, namespace confusion, forms
    "<IMG \"\"\"><SCRIPT>alert('XSS-60')</SCRIPT>\">",
    "<IMG SRC=# onmouseover=\"alert('XSS-61')\">",
    "<img src=x:alert('XSS-62') onerror=eval(src)>",
    "<svg><p><style><img src=x onerror=alert('XSS-63')></style></p></svg>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('XSS-64')>\"></noscript>",
    "<form action=\"javascript:alert('XSS-65')\"><button>go65</button></form>",
    "<button formaction=\"javascript:alert('XSS-66')\">go66</button>",
    "<input type=\"image\" src=\"javascript:alert('XSS-67')\">",
    "<template><img src=x onerror=alert('XSS-68')></template>",
    "<!--<img src=\"--><img src=x onerror=alert('XSS-69')//\">",
    "<a href=\"https://ok.example/\" onclick=\"alert('XSS-70')\">ok70</a>",
    "<div/onmouseover='alert(\"XSS-71\")'>slash71</div>",
    "<img src=\"x\"\x00onerror=\"alert('XSS-72')\">",
    # entity-encoded text: must stay text
    "&lt;script&gt;alert('XSS-73')&lt;/script&gt;",
    "&#60;img src=x onerror=alert('XSS-74')&#62;",
    # DOM clobbering: ids and names the page's own code or anchors use (CLOBBERED)
    *CLOBBER_PAYLOADS,
]

# The MIME types of outputs a kernel (or a hand-edited notebook) can carry.
OUTPUT_MIMES = ("text/html", "image/svg+xml", "text/markdown", "text/latex", "application/javascript",
                "application/vnd.jupyter.widget-view+json", "text/plain")


def payload_html() -> str:
    """Every payload in one HTML/Markdown text, separated so that Markdown sees each on its own."""
    return "\n\n".join(PAYLOADS)


def hostile_outputs() -> list[dict]:
    """Notebook outputs (nbformat dicts) carrying the payloads in every MIME type."""
    text = payload_html()
    data = {
        "text/html": text,
        "image/svg+xml": _SVG_SCRIPT,
        "text/markdown": text,
        "text/latex": "$\\href{javascript:alert('XSS-latex')}{x}$ " + text,
        "application/javascript": "alert('XSS-js-output'); window.xssRan = 1;",
        "application/vnd.jupyter.widget-view+json": {"model_id": "</script><script>alert('XSS-widget')</script>",
                                                     "version_major": 2, "version_minor": 0},
        "text/plain": text,
    }
    outputs = [{"output_type": "display_data", "data": {mime: value}, "metadata": {}}
               for mime, value in data.items()]
    outputs.append({"output_type": "stream", "name": "stdout", "text": text})
    outputs.append({"output_type": "error", "ename": "<script>alert('XSS-ename')</script>",
                    "evalue": text, "traceback": [text]})
    return outputs


def hostile_attachments() -> dict[str, dict[str, str]]:
    """Markdown cell attachments: an SVG with script, an HTML page, a PNG named like a script."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return {"evil.svg": {"image/svg+xml": b64(_SVG_SCRIPT)},
            "evil.html": {"text/html": b64("<script>alert('XSS-attachment')</script>")},
            "x.png\" onerror=\"alert('XSS-attach-name')": {"image/png": "iVBORw0KGgo="}}


ATTACHMENT_MARKDOWN = ("![svg](attachment:evil.svg) ![page](attachment:evil.html) "
                       "![n](attachment:x.png\" onerror=\"alert('XSS-attach-name'))")

def _grade_cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def plant_payloads(nb: nbformat.NotebookNode, written_answer: str, after_code: str) -> nbformat.NotebookNode:
    """``nb`` with the payloads everywhere a student controls: the written answer ``written_answer``
    (with math and hostile attachments), a raw HTML cell, and, after the code cell ``after_code``, a cell
    that displays ``hostile_outputs()`` in the grading kernel and carries them as its submitted outputs,
    and a cell that raises with them."""
    answer = _grade_cell(nb, written_answer)
    answer.source = "Because of these:\n\n" + payload_html() + "\n\n" + ATTACHMENT_MARKDOWN
    answer.attachments = hostile_attachments()
    outputs = hostile_outputs()
    shown = new_code_cell("import json\nfrom IPython.display import display\n"
                          f"for out in json.loads({json.dumps(outputs)!r}):\n"
                          "    if out['output_type'] == 'display_data':\n        display(out['data'], raw=True)\n"
                          "    elif out['output_type'] == 'stream':\n        print(out['text'])\n")
    shown.outputs = [nbformat.from_dict(o) for o in outputs]
    failing = new_code_cell(f"raise RuntimeError({payload_html()!r})")
    failing.outputs = [nbformat.from_dict(outputs[-1])]
    at = nb.cells.index(_grade_cell(nb, after_code)) + 1
    nb.cells[at:at] = [shown, failing]
    raw = new_raw_cell(payload_html())
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.insert(1, raw)
    return nb


URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "background", "poster",
                  "srcdoc", "codebase", "cite", "longdesc", "dynsrc", "lowsrc", "to", "from", "values"}
FORBIDDEN_ELEMENTS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "svg",
                      "template", "link", "meta", "style", "animate", "set", "isindex", "noscript"}
SAFE_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,", re.I)
CONTROL = re.compile(r"[\x00-\x20]")


class _Finder(HTMLParser):
    def __init__(self, allowed_scripts: set[str], allowed_elements: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed_scripts, self.allowed_elements = allowed_scripts, allowed_elements
        self.found: list[str] = []
        self.script: list[str] | None = None
        self.script_tag = ""
        self.math_depth = 0

    def handle_starttag(self, tag, attrs):
        tag = tag.lower()
        if tag == "math":
            self.math_depth += 1
        if tag == "script":
            self.script, self.script_tag = [], self.get_starttag_text() or ""
        elif tag in FORBIDDEN_ELEMENTS and tag not in self.allowed_elements:
            self.found.append(f"<{tag}> element: {self.get_starttag_text()}")
        for name, value in attrs:
            name, value = name.lower(), html.unescape(value or "")
            flat = CONTROL.sub("", value).lower()
            if name.startswith("on"):
                self.found.append(f"event handler {name} on <{tag}>")
            elif name in URL_ATTRIBUTES:
                if self.math_depth and name in ("href", "xlink:href"):
                    self.found.append(f"link on MathML <{tag}>: {value[:80]}")
                elif flat.startswith(("javascript:", "vbscript:", "livescript:")) or name == "srcdoc":
                    self.found.append(f"{name}={value[:80]!r} on <{tag}>")
                elif flat.startswith("data:") and not (tag == "img" and name == "src"
                                                       and SAFE_DATA_IMAGE.match(value.strip())):
                    self.found.append(f"{name}={value[:80]!r} on <{tag}>")
            elif name == "style" and any(bad in flat for bad in ("expression(", "url(", "javascript:",
                                                                    "behavior", "binding", "position:fixed")):
                self.found.append(f"style {value[:80]!r} on <{tag}>")
            elif name == "http-equiv":
                self.found.append(f"<{tag} http-equiv={value!r}>")

    def handle_endtag(self, tag):
        tag = tag.lower()
        if tag == "math" and self.math_depth:
            self.math_depth -= 1
        if tag == "script" and self.script is not None:
            text = "".join(self.script).strip()
            if (self.script_tag, text) not in self.allowed_scripts:
                self.found.append(f"script: {self.script_tag} {text[:80]!r}")
            self.script = None

    def handle_data(self, data):
        if self.script is not None:
            self.script.append(data)


def active_content(page: str, allowed_scripts: set[tuple[str, str]] = frozenset(),
                   allowed_elements: set[str] = frozenset()) -> list[str]:
    """What in an HTML page could run or navigate on its own: scripts (other than ``allowed_scripts``,
    (start tag, text) pairs from ``scripts_of``), event handlers, script/data URLs, MathML links, frames,
    objects, forms, ``<base>``, ``<meta http-equiv>``, style sheets and risky inline styles."""
    finder = _Finder(set(allowed_scripts), set(allowed_elements))
    finder.feed(page)
    finder.close()
    return finder.found


class _Names(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (name == "name" and tag == "a") or name == "headers":
                self.names.extend((value or "").split() if name == "headers" else [value or ""])
            elif name == "href" and value and "#" in value:
                self.links.append(value)


def element_names(page: str) -> tuple[list[str], list[str]]:
    """The ids, anchor names and ``headers`` references in a page (in order, repeated as often as they
    occur), and its links that name a fragment (``#x``, ``page.html#x``): what DOM clobbering is about."""
    finder = _Names()
    finder.feed(page)
    finder.close()
    return finder.names, finder.links


def scripts_of(page: str) -> set[tuple[str, str]]:
    """A page's scripts as (start tag, text) pairs: a template's own scripts, to allow in ``active_content``."""
    return {(tag, text.strip()) for tag, text in re.findall(r"(<script\b[^>]*>)(.*?)</script\s*>", page, re.S | re.I)}
