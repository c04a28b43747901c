"""Personal data as logs and organizers' chat replies may show it: openids hashed, mobile numbers masked."""

from __future__ import annotations

import hashlib
import re

_MOBILE_NUMBER = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
OPENID_HASH_LENGTH = 16


def hash_openid(openid: str) -> str:
    """A stable pseudonym for a follower in logs: SHA-256 of the openid, truncated."""
    return hashlib.sha256(openid.encode()).hexdigest()[:OPENID_HASH_LENGTH]


def mask_phone_numbers(text: str) -> str:
    """``13812345678`` → ``138****5678``; other digit runs are left alone."""
    return _MOBILE_NUMBER.sub(r"\1****\2", text)
