"""Client-chosen text (user names, PTR names, log lines) made safe to show a person."""

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with unprintable characters escaped.

    A user name or PTR name may carry ESC sequences that would repaint, retitle or hide
    parts of the administrator's terminal, or bidi controls that reorder what is shown; they
    appear as ``\\x1b``/``\\u202e`` instead.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
