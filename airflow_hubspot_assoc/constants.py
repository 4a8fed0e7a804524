"""HubSpot's API facts that the package and its stand-in share, each defined once. Pure: imports nothing.

The stand-in under ``testing/`` must not import Airflow (the pytest plugin loads before a test
session configures Airflow), so these live apart from ``api`` and ``association_types``, which
import the error tree; those modules, ``batches``, ``pairs`` and the stand-in import them from here.
"""

from __future__ import annotations

#: HubSpot's association categories (the ``associationCategory`` enum of the v4 and dated specs).
CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"})
#: The spec's ``associationTypeId`` is an int32.
MAX_TYPE_ID = 2**31 - 1
#: Record ids are positive int64 values, exchanged as strings.
MAX_RECORD_ID = 2**63 - 1
#: The statuses of a batch answer (``BatchResponse.status`` in the specs).
BATCH_STATUSES = ("PENDING", "PROCESSING", "CANCELED", "COMPLETE")
#: From-ids per batch read request (HubSpot's cap).
BATCH_READ_MAX_INPUTS = 1_000
#: Inputs per batch create request that HubSpot documents.
BATCH_CREATE_MAX_INPUTS = 100
#: The most inputs per create request the operator sends (``batch_size``); above HubSpot's documented
#: cap because HubSpot has accepted more, and the load halves a batch that is refused as too large.
BATCH_SIZE_MAX = 2_000
#: Characters HubSpot keeps in one text property value: no business key (an email, a domain, an
#: ``external_id``) can be longer and still match a record.
MAX_PROPERTY_VALUE_CHARS = 65_536
