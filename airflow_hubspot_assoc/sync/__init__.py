"""Sync: give HubSpot the desired state of the associations, send only what changed since last time."""
