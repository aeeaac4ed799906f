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


def highlight(text: str, spans: list[tuple[int, int]], width: int = 320) -> tuple[Segment, ...]:
    """A window of `text` around the first span, split into plain and marked segments."""
    if not text:
        return ()
    spans = sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s)
    if not spans:
        cut = text[:width]
        return (Segment(cut + ("…" if len(text) > width else "")),)
    start = max(0, spans[0][0] - width // 3)
    end = min(len(text), start + width)
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
