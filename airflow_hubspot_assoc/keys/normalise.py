"""How HubSpot compares a key property's values, and which properties may serve as keys.

Pure functions: the resolver uses ``compare_form`` both on the keys read from the input and on the
values HubSpot answers with, so a key and its record meet whatever case or spelling each side used.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_hubspot_assoc.exceptions import HubSpotConfigError

EMAIL = "email"
DOMAIN = "domain"
#: Object types (names and type ids) whose records are contacts and companies.
CONTACTS = frozenset({"contacts", "0-1"})
COMPANIES = frozenset({"companies", "0-2"})
#: Property names are HubSpot's internal names: lowercase letters, digits and underscores.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_SCHEMES = ("https://", "http://")


def fold_email(text: str) -> str:
    """Emails match case-insensitively, surrounding whitespace ignored."""
    return text.strip().casefold()


def fold_domain(text: str) -> str:
    """A domain as HubSpot keeps it: lowercase, no scheme, no ``www.``, no path, port or trailing dot.

    Warehouses hold websites as often as domains (``https://www.Acme.com/about``); both mean
    ``acme.com``.
    """
    value = text.strip().casefold()
    for scheme in _SCHEMES:
        if value.startswith(scheme):
            value = value[len(scheme) :]
            break
    for stop in "/?#":
        value = value.split(stop, 1)[0]
    value = value.split(":", 1)[0].rstrip(".")
    return value.removeprefix("www.")


def exact(text: str) -> str:
    """Other properties match exactly as given, surrounding whitespace ignored."""
    return text.strip()


def compare_form(property_name: str, text: str) -> str:
    """The form in which HubSpot compares ``text`` as a value of ``property_name``."""
    if property_name == EMAIL:
        return fold_email(text)
    if property_name == DOMAIN:
        return fold_domain(text)
    return exact(text)


@dataclass(frozen=True)
class KeyProperty:
    """One side's key: the object type, the property, and how it is looked up.

    ``search`` is True for company domains, which HubSpot does not keep unique: they go through the
    search API, where several matches are possible. ``trusted`` properties need no check through the
    properties API (a contact's email, which HubSpot may report as not unique although batch read
    matches it uniquely, and a company's domain).
    """

    side: str
    object_type: str
    name: str

    @property
    def search(self) -> bool:
        return self.name == DOMAIN

    @property
    def trusted(self) -> bool:
        return (self.name == EMAIL and self.object_type in CONTACTS) or self.search

    def fold(self, text: str) -> str:
        return compare_form(self.name, text)


def key_property(parameter: str, side: str, object_type: str, name: object) -> KeyProperty | None:
    """Check an id property parameter before any request; None means the side holds record ids.

    :param parameter: the operator parameter, named in errors (``from_id_property``).
    """
    if name is None or (isinstance(name, str) and not name.strip()):
        return None
    if not isinstance(name, str):
        raise HubSpotConfigError(f"{parameter} must be a property name, got {name!r}")
    text = name.strip()
    if text != text.lower() or not set(text) <= _NAME_CHARS or len(text) > 100:
        raise HubSpotConfigError(
            f"{parameter}={name!r} is not a HubSpot property name (its internal name: lowercase letters, "
            "digits and _, such as 'email' or 'external_id')"
        )
    if text == "hs_object_id":
        return None  # the record id itself
    if text == DOMAIN and object_type not in COMPANIES:
        raise HubSpotConfigError(
            f"{parameter}='domain' is only a key of companies, not of {object_type}; use a property with "
            "unique values instead"
        )
    return KeyProperty(side, object_type, text)
