"""The MTurk adapter of the marketplace port: everything that is MTurk's and not turnout's
(ExternalQuestion XML, qualification type ids, fee rules, error codes and text)."""

from turnout.marketplace.mturk.adapter import MTurkMarketplace

__all__ = ["MTurkMarketplace"]
