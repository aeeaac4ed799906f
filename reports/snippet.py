"""Snippets with the matched signals marked, and the only links a dossier may carry."""

from __future__ import annotations

from urllib.parse import urlsplit

from reports.model import Segment


def safe_href(url: str | None) -> str | None:
    """The URL if it is plain http(s), else None: no javascript:, data: or relative tricks."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _word_start(text: str, i: int, limit: int) -> int:
    """`i`, moved on to the start of the next word if it falls inside one (never past `limit`)."""
    if i <= 0 or text[i - 1].isspace():
        return i
    gap = next((j for j in range(i, limit) if text[j].isspace()), None)
    return i if gap is None else gap + 1


def _word_end(text: str, i: int, floor: int) -> int:
    """`i`, moved back to the end of the word before it if it falls inside one (never below `floor`)."""
    if i >= len(text) or text[i].isspace():
        return i
    gap = next((j for j in range(i - 1, floor - 1, -1) if text[j].isspace()), None)
    return i if gap is None else gap


def highlight(text: str, spans: list[tuple[int, int]], width: int = 320) -> tuple[Segment, ...]:
    """A window of `text` around the first span, split into plain and marked segments; the window
    starts and ends between words, so no quote opens on half a word."""
    if not text:
        return ()
    spans = sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s)
    if not spans:
        end = _word_end(text, min(len(text), width), 1)
        return (Segment(text[:end] + ("…" if end < len(text) else "")),)
    start = _word_start(text, max(0, spans[0][0] - width // 3), spans[0][0])
    end = _word_end(text, min(len(text), start + width), spans[0][0] + 1)
    segments: list[Segment] = [Segment("…")] if start > 0 else []
    pos = start
    for s, e in spans:
        if s < pos or s >= end:
            continue
        if s > pos:
            segments.append(Segment(text[pos:s]))
        segments.append(Segment(text[s:min(e, end)], mark=True))
        pos = min(e, end)
    if pos < end:
        segments.append(Segment(text[pos:end]))
    if end < len(text):
        segments.append(Segment("…"))
    return tuple(Segment(seg.text.replace("\n", " "), seg.mark) for seg in segments)
