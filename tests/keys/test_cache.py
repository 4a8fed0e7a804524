"""The key cache: one file per portal, object type and property, replaced whole, ignored when bad."""

from __future__ import annotations

import json
import logging

from airflow_hubspot_assoc.keys.cache import KeyCache
from airflow_hubspot_assoc.keys.normalise import KeyProperty

LOG = logging.getLogger(__name__)
EMAIL = KeyProperty("from", "contacts", "email")


def test_saved_keys_load_back_per_portal_and_property(tmp_path):
    cache = KeyCache(str(tmp_path), "123", log=LOG)
    cache.save(EMAIL, {"ann@x.com": 11, "bob@x.com": 2**62})
    assert cache.path(EMAIL) == f"{tmp_path}/123/contacts/email.json"
    assert cache.load(EMAIL) == {"ann@x.com": 11, "bob@x.com": 2**62}
    assert KeyCache(str(tmp_path), "456", log=LOG).load(EMAIL) == {}
    assert cache.load(KeyProperty("to", "companies", "external_id")) == {}
    assert [p.name for p in (tmp_path / "123" / "contacts").iterdir()] == ["email.json"]  # no temporary left


def test_a_file_that_is_not_a_key_cache_is_ignored_with_a_warning(tmp_path, caplog):
    cache = KeyCache(str(tmp_path), "conn-hubspot/default", log=LOG)
    path = tmp_path / "conn-hubspot_default" / "contacts" / "email.json"
    path.parent.mkdir(parents=True)
    for text in ("not json", json.dumps({"format": 99, "property": "email", "ids": {}}), "[]"):
        path.write_text(text)
        assert cache.load(EMAIL) == {}
    assert "Ignoring the key cache" in caplog.text
