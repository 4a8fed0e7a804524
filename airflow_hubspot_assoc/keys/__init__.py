"""Business keys: load pairs by email, domain or a unique property instead of HubSpot record ids.

``normalise`` says how HubSpot compares a property's values and which properties may serve as keys;
``keymap`` holds the keys of one side and what they resolved to, compactly; ``resolver`` collects the
distinct keys in the load's validate pass, resolves them with the fewest requests and maps each pair
to record ids (or to a failure) in the send pass.

Nothing is re-exported here: ``pairs`` imports nothing from this package, and this package imports
``pairs``, so the package ``__init__`` stays empty to keep the import graph a tree.
"""
