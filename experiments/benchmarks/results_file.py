"""RESULTS.md, the record of the benchmark figures: one `## ` section per benchmark."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(title: str, body: str) -> None:
    """Replaces the section `title` (a `## ` heading line) by `body`, or appends it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if title in text:
        head, _, rest = text.partition(title)
        nxt = rest.find("\n## ")
        text = head + body + (rest[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    RESULTS.write_text(text)
