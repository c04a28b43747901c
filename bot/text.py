"""The one form in which keywords and messages are compared, shared by the settings (which refuse keywords
that normalise to nothing) and the handlers (which match in it).

It lives in ``bot`` rather than ``handlers.matching`` because ``bot.settings`` needs it and importing
``handlers`` would import every router, which import the settings.
"""

from __future__ import annotations

import re
import unicodedata

_IGNORED = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Fold full-width forms and case, drop whitespace and punctuation: the form keywords are matched in."""
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text).lower())
