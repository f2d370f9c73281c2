"""Opaque NextTokens that remember where a page ended and what was asked.

Like moto's paginator, a token carries a fingerprint of the other arguments, so a token
reused with different filters is refused instead of silently returning the wrong rows.
It holds a keyset position (the last row's sort key), not an offset, so rows created
between pages do not shift the listing.

Limits: MaxResults is 1..100 and NextToken 1..255 characters (botocore model). The
default page size when MaxResults is omitted is 10: GUESS, from the legacy API's PageSize
default.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import ParameterValidationError

DEFAULT_PAGE_SIZE = 10


def fingerprint(operation: str, filters: Mapping[str, Any]) -> str:
    blob = json.dumps([operation, dict(filters)], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode(operation: str, filters: Mapping[str, Any], last_key: list[Any]) -> str:
    raw = json.dumps({"f": fingerprint(operation, filters), "k": last_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str | None, operation: str, filters: Mapping[str, Any]) -> list[Any] | None:
    """The keyset position a token stands for, or None for the first page."""
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, fp = data["k"], data["f"]
        if not isinstance(key, list):
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise ParameterValidationError(
            f'The value "{token}" is not valid for the parameter NextToken.'
        ) from exc
    if fp != fingerprint(operation, filters):
        # GUESS: wording; the refusal itself follows moto's paginator.
        raise ParameterValidationError(
            f'The value "{token}" is not valid for the parameter NextToken: it was issued '
            "for a call with different arguments."
        )
    return key


def page_size(max_results: int | None) -> int:
    return DEFAULT_PAGE_SIZE if max_results is None else max_results
