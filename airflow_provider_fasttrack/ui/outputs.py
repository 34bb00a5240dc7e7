"""A session task's output folder as the FastTrack view shows it: the files it lists, read with a size limit.

Everything in the folder was written by a session, so it is hostile: only plain files listed at the folder's top
level, by a name without path separators, are shown or sent; images are sent only when their first bytes say
PNG or JPEG; ``report.md`` is rendered as Markdown with raw HTML left as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.ui.run_data import TaskOutputs

__all__ = [
    "DOWNLOAD_LIMIT",
    "IMAGE_LIMIT",
    "REPORT",
    "REPORT_LIMIT",
    "OutputFile",
    "OutputRefused",
    "image_type",
    "list_outputs",
    "read_limited",
    "render_report",
]

REPORT = "report.md"
REPORT_LIMIT = 1 << 20
IMAGE_LIMIT = 16 << 20
DOWNLOAD_LIMIT = 256 << 20
#: the most entries of one folder the view lists
MAX_ENTRIES = 1000
MAX_NAME = 255
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class OutputRefused(Exception):
    """A file the view does not show or send; the message says why, for the person looking."""


@dataclass(frozen=True)
class OutputFile:
    name: str
    size: int

    @property
    def is_image(self) -> bool:
        return self.name.lower().endswith(IMAGE_SUFFIXES) and self.size <= IMAGE_LIMIT


def safe_name(name: object) -> bool:
    """A name the folder may list: one path component, printable, not ``.``/``..``."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
    )


def list_outputs(hook: BackendAIHook, outputs: TaskOutputs) -> list[OutputFile]:
    """The plain files at the top of the task's output folder, by name (directories and symlinks left out)."""
    files = []
    for entry in hook.list_files(outputs.vfolder, outputs.folder)[:MAX_ENTRIES]:
        name, size = entry.get("name"), entry.get("size")
        if entry.get("type") != "FILE" or not safe_name(name) or not isinstance(size, int) or size < 0:
            continue
        files.append(OutputFile(str(name), size))
    return sorted(files, key=lambda f: f.name)


def find_listed(hook: BackendAIHook, outputs: TaskOutputs, name: str, limit: int) -> OutputFile:
    """The listed file called ``name``, no larger than ``limit``; else :class:`OutputRefused`."""
    if not safe_name(name):
        raise OutputRefused("not a file name of the folder")
    listed = {f.name: f for f in list_outputs(hook, outputs)}
    found = listed.get(name)
    if found is None:
        raise OutputRefused(f"{name!r} is not a file of the task's outputs")
    if found.size > limit:
        raise OutputRefused(f"{name!r} is {found.size} bytes, over the limit of {limit}")
    return found


def read_limited(hook: BackendAIHook, outputs: TaskOutputs, name: str, limit: int) -> Iterator[bytes]:
    """The chunks of a listed file; stops with :class:`OutputRefused` once more than ``limit`` bytes arrive."""
    sent = 0
    for chunk in hook.iter_file(outputs.vfolder, f"{outputs.folder}/{name}"):
        sent += len(chunk)
        if sent > limit:
            raise OutputRefused(f"{name!r} grew over the limit of {limit} bytes")
        yield chunk


def read_all(hook: BackendAIHook, outputs: TaskOutputs, name: str, limit: int) -> bytes:
    """A listed file of at most ``limit`` bytes, whole."""
    find_listed(hook, outputs, name, limit)
    return b"".join(read_limited(hook, outputs, name, limit))


def image_type(head: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from a file's first bytes; None for anything else (SVG included)."""
    for magic, content_type in _MAGIC.items():
        if head.startswith(magic):
            return content_type
    return None


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_report(
    text: str, image_url: Callable[[str], str | None], file_url: Callable[[str], str | None]
) -> str:
    """``report.md`` as HTML: raw HTML stays text; an image shows only when it names a listed PNG/JPEG of the
    folder (``image_url``), a link keeps only an http(s) target or a listed file (``file_url``)."""
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = [_safe_inline(child, image_url, file_url) for child in token.children]
    return str(_markdown.renderer.render(tokens, _markdown.options, {}))


def _safe_inline(
    token: Token, image_url: Callable[[str], str | None], file_url: Callable[[str], str | None]
) -> Token:
    if token.type == "image":
        url = image_url(str(token.attrGet("src") or ""))
        if url is None:
            text = Token("text", "", 0)
            text.content = f"[image: {token.content}]"
            return text
        token.attrSet("src", url)
    elif token.type == "link_open":
        href = str(token.attrGet("href") or "")
        scheme = urlsplit(href).scheme.lower()
        target = href if scheme in ("http", "https") else file_url(href)
        if target is None:
            token.attrs.pop("href", None)
        else:
            token.attrSet("href", target)
            token.attrSet("rel", "noopener noreferrer")
    return token
