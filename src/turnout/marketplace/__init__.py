"""Marketplaces turnout recruits on. ``make_client`` returns an unmodified boto3 MTurk
client for live, sandbox or the offline marketplace (``turnout.marketplace.local``)."""

from .client import ENDPOINTS, LOCAL_CREDENTIALS, MODES, describe_client_error, make_client

__all__ = ["ENDPOINTS", "LOCAL_CREDENTIALS", "MODES", "describe_client_error", "make_client"]
