"""Errors as the one line a user reads: what failed, never a library's traceback."""

from __future__ import annotations


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reason(error: BaseException, limit: int = 200) -> str:
    """An exception as one short line: its OS/FFmpeg error text, else its first line
    (cut at `limit` characters: tensorstore puts a whole spec in it), else its
    type's name."""
    if getattr(error, "strerror", None):  # OSError, FFmpegError: without errno or path
        return str(error.strerror)
    text = str(error).strip().splitlines()
    return _cut(text[0] if text else type(error).__name__, limit)


def one_line(error: BaseException, limit: int) -> str:
    """An exception's whole message on one line (orbax and tensorstore spread the
    cause over several), cut at `limit` characters, else its type's name."""
    return _cut(" ".join(str(error).split()), limit) or type(error).__name__
