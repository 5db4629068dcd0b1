"""Locale helpers: BCP 47 tags as CMSs send them ("en-US", "de_DE", "pt-br"), as the Rust SDK's
``locale`` module reads them."""

import re


def ascii_lower(s: str) -> str:
    return re.sub("[A-Z]", lambda m: m.group(0).lower(), s)


def ascii_upper(s: str) -> str:
    return re.sub("[a-z]", lambda m: m.group(0).upper(), s)


def normalize(tag: str) -> str:
    """Language lower-case, region upper-case, ``_`` → ``-`` ("de_de" → "de-DE")."""
    language, *rest = re.split("[-_]", tag.strip())
    return "-".join([ascii_lower(language)] + [ascii_upper(p) if len(p) == 2 else p for p in rest])


def language(tag: str) -> str:
    """The primary language subtag ("de-AT" → "de")."""
    return normalize(tag).split("-")[0]


def default_voice(tag: str) -> str:
    """The espeak-ng style voice for a locale ("en-US" → "en-us"; none → "en-us")."""
    normalized = normalize(tag)
    return ascii_lower(normalized) if normalized else "en-us"


def slug(tag: str) -> str:
    """A locale as a field-name suffix ("de-DE" → "de_de")."""
    return ascii_lower(normalize(tag)).replace("-", "_")
