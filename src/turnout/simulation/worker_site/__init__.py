"""The worker site: pages where a person acts as a worker in the offline marketplace."""

from .app import create_worker_site

__all__ = ["create_worker_site"]
