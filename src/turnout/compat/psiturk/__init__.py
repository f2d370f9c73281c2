"""turnout's stand-in for the ``psiturk`` package (see turnout.compat).

Every module of psiTurk 3.3.1's package is here. What turnout can do is mapped onto its
own services (``amt_services_wrapper.MTurkServicesWrapper`` onto the HIT services and the
payments ledger, for instance); what it cannot do imports and raises
``turnout.compat.unsupported.NotProvidedByTurnout`` when used, naming what to use instead.
"""

from turnout.compat.psiturk.version import version_number

__version__ = version_number
