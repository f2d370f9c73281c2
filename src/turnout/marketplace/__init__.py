"""Marketplaces turnout recruits on. ``make_client`` returns an unmodified boto3 MTurk
client for live, sandbox or the offline marketplace (``turnout.marketplace.local``)."""

from .client import (
    ENDPOINT_ENV,
    ENDPOINTS,
    MODES,
    describe_client_error,
    local_credentials,
    make_client,
)

__all__ = ["ENDPOINTS", "ENDPOINT_ENV", "MODES", "describe_client_error", "local_credentials", "make_client"]
