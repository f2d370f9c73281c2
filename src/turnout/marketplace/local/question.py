"""Checking a HIT's (or a qualification test's) Question document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import turnout.marketplace.local.errors as E

__all__ = ["LOOPBACK_HOSTS", "parse_question"]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def parse_question(question: str, *, allow_http: bool) -> str | None:
    """Check a Question document; return its ExternalURL when it is an ExternalQuestion.

    model doc: must be a QuestionForm, ExternalQuestion or HTMLQuestion document.
    MTurk: ExternalURL must be HTTPS. The error wordings are GUESS.
    """
    try:
        root = ET.fromstring(question)
    except ET.ParseError as exc:
        raise E.RequestError(
            f"There was an error parsing the XML question or answer data in your request. Details: {exc}",
            E.XML_PARSE_ERROR,
        ) from exc
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("ExternalQuestion", "HTMLQuestion", "QuestionForm"):
        raise E.RequestError(
            f"There was an error parsing the XML question or answer data in your request: "
            f"the root element {kind} is not QuestionForm, ExternalQuestion or HTMLQuestion.",
            E.XML_PARSE_ERROR,
        )
    if kind != "ExternalQuestion":
        return None
    url_el = next((el for el in root if el.tag.rsplit("}", 1)[-1] == "ExternalURL"), None)
    url = (url_el.text or "").strip() if url_el is not None else ""
    parts = urlsplit(url)
    ok = parts.scheme == "https" and bool(parts.hostname)
    if not ok and allow_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        ok = True
    if not ok:
        hint = " (http is allowed only for 127.0.0.1/localhost, and only when allow_http_external_url is on)"
        raise E.ParameterValidationError(
            f'The value "{url}" is not valid for the parameter ExternalURL: it must be an https URL.{hint}'
        )
    return url
