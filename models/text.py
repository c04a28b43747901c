"""The one form in which keywords and messages are compared, shared by the content schema (which refuses
keywords that normalise to nothing) and the handlers (which match in it)."""

from __future__ import annotations

import re
import unicodedata

_IGNORED = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Fold full-width forms and case, drop whitespace and punctuation: the form keywords are matched in."""
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text).lower())
