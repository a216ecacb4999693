"""fail2ban's ``<TAG>`` placeholders in filter patterns, turned into named groups.

What the tags mean is fail2ban 1.0.2's (so imported filters match what they matched there);
the expressions are written here:

* ``<HOST>``: an address or a host name (``ip4``, ``ip6`` or ``dns`` group); with the
  filter's ``usedns = no`` an address only. Names are *reported*, never resolved here: the
  identity stage decides what a name is worth.
* ``<ADDR>``, ``<IP4>``, ``<IP6>``, ``<DNS>``, ``<CIDR>``, ``<SUBNET>``: those parts alone
  (also as self-closing ``<F-IP4/>`` …); ``<F-ID/>`` a non-blank failure id, ``<F-PORT/>`` a
  port.
* ``<F-NAME>…</F-NAME>``: a group ``name`` (lower case; ``F-ID`` is ``fid``, ``F-PORT`` is
  ``fport``). Special ones: ``content`` (prefregex: the text failregex sees), ``user``,
  ``alt_user…`` (a fallback for ``user``), ``tuple_…``, ``nofail`` (a match that is not a
  failure), ``mlfid`` (ties the lines of one connection together), ``mlfforget``,
  ``mlfgained``. A closing tag that was never opened is kept as text.
* ``<SKIPLINES>``: any number of whole lines (multi-line filters).
"""

from __future__ import annotations

import re

__all__ = ["ID_GROUPS", "complex_groups", "translate"]

# An IPv4 address as logs write it; an IPv4-mapped IPv6 prefix is matched but not captured.
_IP4 = r"(?:::[fF]{4,6}:)?(?P<ip4>(?:[0-9]{1,3}\.){3}[0-9]{1,3})"
# An IPv6 address: up to seven "hextet:" or "::" steps, then a last hextet or a trailing "::".
_IP6 = r"(?P<ip6>(?:[0-9A-Fa-f]{1,4}:{1,2}|::){1,7}(?:[0-9A-Fa-f]{1,4}|(?<=:):))"
# A host name: word characters, dots and dashes, ending in a word character.
_DNS = r"(?P<dns>[\w.^-]*\w)"
_CIDR = r"(?P<cidr>[0-9]+)"
_ADDR = rf"\[?(?:{_IP4}|{_IP6})\]?"
_HOST = rf"(?:{_ADDR}|{_DNS})"
_SUBNET = rf"\[?(?:{_IP4}|{_IP6})(?:/{_CIDR})?\]?"

_FIXED = {
    "IP4": _IP4,
    "F-IP4/": _IP4,
    "IP6": _IP6,
    "F-IP6/": _IP6,
    "ADDR": _ADDR,
    "F-ADDR/": _ADDR,
    "CIDR": _CIDR,
    "F-CIDR/": _CIDR,
    "SUBNET": _SUBNET,
    "F-SUBNET/": _SUBNET,
    "DNS": _DNS,
    "F-DNS/": _DNS,
    "F-ID/": r"(?P<fid>\S+)",
    "F-PORT/": r"(?P<fport>\w+)",
}
_RENAMED = {"id": "fid", "port": "fport"}

_ANY_TAG = re.compile(r"</?[\w-]+/?>")
_CUSTOM = re.compile(r"^(/?)F-([A-Z0-9_-]+)$")
# "((?i)x)" and "(?:(?i)x)": a flag meant for the group only becomes the scoped "(?i:x)".
_GROUP_FLAGS = re.compile(r"(?<!\\)\((?:\?:)?\(\?([a-zA-Z]+)\)")
# alt_user, alt_user_2 → user; tuple_id_1 → id (combined into a tuple)
_COMPLEX = re.compile(r"^(alt_|tuple_)(.*?)(?:_\d+)?$")

# Groups that identify a failure, in the order fail2ban looks at them.
ID_GROUPS = ("fid", "ip4", "ip6", "dns")


def translate(pattern: str, *, dns: bool = True) -> str:
    """Replace the tags in one pattern by expressions with named groups."""
    opened: set[str] = set()
    skiplines = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal skiplines
        tag = m.group(0)
        name = tag[1:-1]
        if name == "HOST":
            return _HOST if dns else _ADDR
        if name == "SKIPLINES":
            skiplines += 1
            return rf"\n(?P<skiplines{skiplines - 1}>(?:(?:.*\n)*?))"
        if name in _FIXED:
            return _FIXED[name]
        custom = _CUSTOM.match(name)
        if not custom:
            return tag
        closing, label = custom.groups()
        if closing:
            return ")" if label in opened else tag
        opened.add(label)
        group = label.lower()
        return f"(?P<{_RENAMED.get(group, group)}>"

    return _GROUP_FLAGS.sub(r"(?\1:", _ANY_TAG.sub(replace, pattern))


def complex_groups(names: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The ``alt_…`` and ``tuple_…`` groups of a pattern: (group, target) pairs, sorted."""
    alts: list[tuple[str, str]] = []
    tuples: list[tuple[str, str]] = []
    for name in names:
        m = _COMPLEX.match(name) if len(name) > 4 else None
        if not m:
            continue
        target = _RENAMED.get(m.group(2), m.group(2))
        (alts if m.group(1) == "alt_" else tuples).append((name, target))
    return sorted(alts), sorted(tuples)
