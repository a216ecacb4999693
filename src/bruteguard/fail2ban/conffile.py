"""Reading fail2ban filter files the way fail2ban 1.0.2 reads them.

A filter is ``NAME.conf``, then ``NAME.d/*.conf``, ``NAME.local`` and ``NAME.d/*.local``,
each preceded and followed by the files its ``[INCLUDES]`` section names (``before`` /
``after``, recursively, every one with its own ``.local``). Later files override earlier
ones key by key; the value a key had before it was overridden stays reachable as
``known/KEY``. Values are expanded in two steps, both kept from fail2ban because real filters
depend on their exact order:

1. ``%(name)s`` (Python's configparser interpolation, plus ``%(section/name)s`` and
   ``%(known/name)s``) when a ``[Definition]`` option is read, seeing the options given with
   the filter (``sshd[mode=aggressive]``), the section itself and ``[DEFAULT]``;
2. ``<name>`` tags, recursively, over the result, the options given with the filter, the
   ``[Init]`` section, and any other option or ``section/option`` on demand (so that
   ``<mdre-<mode>>`` picks ``mdre-aggressive``). Tags that name nothing (``<HOST>``,
   ``<F-USER>``) are left for :mod:`bruteguard.fail2ban.tags`.

Nothing here evaluates text: values stay strings until they are compiled as patterns.
"""

from __future__ import annotations

import configparser
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bruteguard.errors import ConfigError

__all__ = [
    "FILTER_OPTIONS",
    "ConfFiles",
    "FilterError",
    "FilterOptions",
    "filter_files",
    "parse_spec",
    "resolve_filter",
]

# The [Definition] options a filter hands to the matcher (fail2ban's FilterReader).
FILTER_OPTIONS = (
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
)

_MAX_DEPTH = 10  # configparser's MAX_INTERPOLATION_DEPTH: %(a)s → %(b)s → … at most this deep
_MAX_TAG_ROUNDS = 25  # how often one tag may be substituted into another before we call it a loop
_TAG = re.compile(r"<([^ <>]+)>")
_PERCENT = re.compile(r"%(?:%|\(([^)]*)\)s)")
_SECTION_OPTION = re.compile(r"^([\w-]+)/([^\s>]+)$")
_CONDITIONAL = re.compile(r"^(\w+)(\?.+)$")
# NAME[opt=value, opt2="quoted", opt3='quoted'][more=options]
_SPEC = re.compile(r"^\s*([^\[\]]+?)\s*((?:\[.*\])?)\s*$", re.DOTALL)
_SPEC_OPTION = re.compile(
    r"""\s*([\w.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^,\]"']*))\s*(,|\]\s*\[|$)""", re.DOTALL
)


class FilterError(ConfigError):
    """A fail2ban filter cannot be loaded: names the file, the key and what is wrong."""


class _Missing(LookupError):
    """A section or option does not exist (fail2ban treats some of these as 'not set')."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``name[key=value, key2="v"]`` into the name and its options (as a jail writes it)."""
    m = _SPEC.match(spec)
    if not m:
        raise FilterError(f"filter {spec!r}: expected NAME or NAME[key=value, …]")
    name, bracket = m.group(1), m.group(2)
    options: dict[str, str] = {}
    if bracket:
        body = bracket[1:-1]
        pos = 0
        while pos < len(body):
            om = _SPEC_OPTION.match(body, pos)
            if not om or om.end() == pos:
                raise FilterError(
                    f"filter {spec!r}: cannot read the options at {body[pos : pos + 25]!r}"
                )
            value = next(v for v in om.group(2, 3, 4) if v is not None)
            options[om.group(1)] = value.strip()
            pos = om.end()
    return name, options


@dataclass
class _Section:
    values: dict[str, str] = field(default_factory=dict)
    origin: dict[str, Path] = field(default_factory=dict)


class ConfFiles:
    """The sections of a set of fail2ban config files, merged in fail2ban's order."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files: list[Path] = []
        self.defaults = _Section()
        self.sections: dict[str, _Section] = {}
        for path in self._with_includes(list(files)):
            self._merge(path)
        if not self.files:
            raise FilterError("no readable filter file among " + ", ".join(map(str, files)))

    # -- reading -----------------------------------------------------------------------

    @staticmethod
    def _parse(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        # DEFAULT is read as a plain section (the default_section is a name no file uses)
        # so that each section's own options stay apart, as fail2ban merges them.
        parser = configparser.RawConfigParser(
            default_section="\0",
            interpolation=None,
            inline_comment_prefixes=(";",),
            strict=False,
        )
        try:
            text = path.read_text(encoding="utf-8")
            parser.read_string(text, source=str(path))
        except UnicodeDecodeError as exc:
            raise FilterError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except configparser.Error as exc:
            raise FilterError(f"{path}: {exc.message.splitlines()[0]}") from None
        except OSError as exc:
            raise FilterError(f"{path}: {exc.strerror}") from None
        sections = {name: dict(parser.items(name)) for name in parser.sections()}
        defaults = sections.pop("DEFAULT", {})
        return defaults, sections

    def _with_includes(self, files: list[Path], ancestors: tuple[Path, ...] = ()) -> list[Path]:
        ordered: list[Path] = []
        for path in _with_local(files):
            if not path.is_file():
                continue
            defaults, sections = self._parse(path)
            includes = sections.get("INCLUDES", {})
            chain = (*ancestors, path)
            before, after = [], []
            for key, out in (("before", before), ("after", after)):
                raw = includes.get(key)
                if raw is None:
                    continue
                text = _Interpolation(
                    lambda n, s=includes, d=defaults: s.get(n, d.get(n)), "INCLUDES", path
                ).expand(raw)
                for entry in filter(None, (line.strip() for line in text.split("\n"))):
                    target = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                    if target not in chain:
                        out.extend(self._with_includes([target], chain))
            ordered += [*before, path, *after]
        return ordered

    def _merge(self, path: Path) -> None:
        defaults, sections = self._parse(path)
        self.files.append(path)
        self.defaults.values.update(defaults)
        self.defaults.origin.update(dict.fromkeys(defaults, path))
        for name, values in sections.items():
            cond = _CONDITIONAL.match(name)
            if cond:  # [Section?key=value]: options apply only under that condition
                name = cond.group(1)
                values = {k + cond.group(2): v for k, v in values.items()}
            section = self.sections.get(name)
            if section is None:
                self.sections[name] = _Section(dict(values), dict.fromkeys(values, path))
                continue
            known = self.sections.setdefault("KNOWN/" + name, _Section())
            for key in values:
                if key in section.values:
                    known.values[key] = section.values[key]
                    known.origin[key] = section.origin[key]
            section.values.update(values)
            section.origin.update(dict.fromkeys(values, path))

    # -- lookup ------------------------------------------------------------------------

    def has_section(self, name: str) -> bool:
        return name in self.sections

    def own_options(self, section: str) -> list[str]:
        """The options a section sets itself (without [DEFAULT]'s)."""
        return list(self.sections[section].values) if section in self.sections else []

    def has_own_option(self, section: str, option: str) -> bool:
        return option.lower() in self.sections.get(section, _Section()).values

    def origin(self, section: str, option: str) -> Path:
        """The file that set an option last (for error messages)."""
        src = self.sections.get(section)
        if src and option in src.origin:
            return src.origin[option]
        return self.defaults.origin.get(option, self.files[-1])

    def raw(self, section: str, option: str, vars: Mapping[str, str] | None = None) -> str:
        """An option's text before interpolation: given options, then the section, then DEFAULT."""
        option = option.lower()
        if vars and option in vars:
            return vars[option]
        if section != "DEFAULT":
            if section not in self.sections:
                raise _Missing(f"no section [{section}]")
            own = self.sections[section].values
            if option in own:
                return own[option]
        if option in self.defaults.values:
            return self.defaults.values[option]
        raise _Missing(f"no option {option!r} in [{section}]")

    def get(self, section: str, option: str, vars: Mapping[str, str] | None = None) -> str:
        """An option with its ``%(name)s`` references expanded (configparser + fail2ban)."""
        lvars = {k.lower(): v for k, v in (vars or {}).items()}
        value = self.raw(section, option, lvars)

        def lookup(name: str) -> str | None:
            if name == "__name__":
                return section
            try:
                return self.raw(section, name, lvars)
            except _Missing:
                pass
            sm = _SECTION_OPTION.match(name)
            return self._section_option(section, sm.group(1), sm.group(2)) if sm else None

        where = f"{self.origin(section, option.lower())} [{section}] {option}"
        return _Interpolation(lookup, where, None).expand(value)

    def _section_option(self, section: str, sec: str, opt: str) -> str | None:
        """Raw text of ``%(sec/opt)s``: ``known`` is the overridden value, else the section's."""
        opt = opt.lower()
        if sec.lower() == "known":
            known = self.sections.get("KNOWN/" + section)
            if known and opt in known.values:
                return known.values[opt]
        elif sec.lower() != "default":
            if sec not in self.sections:
                return None
            if opt in self.sections[sec].values:
                return self.sections[sec].values[opt]
        return self.defaults.values.get(opt)

    def get_ex(self, section: str, option: str, vars: Mapping[str, str] | None = None) -> str:
        """``get`` that also accepts ``section/option`` and ``known/option`` names (for tags)."""
        sm = _SECTION_OPTION.match(option) if "/" in option else None
        if sm:
            sec, opt = sm.groups()
            if sec.lower() == "known":
                candidates = ["KNOWN/" + section, section]
            elif sec.lower() == "default":
                candidates = ["DEFAULT"]
            else:
                candidates = [sec]
            for candidate in candidates:
                try:
                    return self.get(candidate, opt)
                except _Missing:
                    continue
        return self.get(section, option, vars)


class _Interpolation:
    """``%(name)s`` expansion with configparser's rules: ``%%`` is ``%``, depth at most 10."""

    def __init__(self, lookup: Callable[[str], str | None], where: str, path: Path | None):
        self.lookup = lookup
        self.where = where if path is None else f"{path} [{where}]"

    def expand(self, text: str, depth: int = 1) -> str:
        if "%" not in text:
            return text
        if depth > _MAX_DEPTH:
            raise FilterError(f"{self.where}: %(…)s references nested too deep (a loop?)")
        out: list[str] = []
        pos = 0
        for m in _PERCENT.finditer(text):
            stray = text.find("%", pos, m.start())
            if stray >= 0:
                break
            out.append(text[pos : m.start()])
            pos = m.end()
            if m.group(0) == "%%":
                out.append("%")
                continue
            name = m.group(1)
            value = self.lookup(name.lower())
            if value is None:
                value = self.lookup(name)
            if value is None:
                raise FilterError(f"{self.where}: %({name})s names no option")
            out.append(self.expand(value, depth + 1))
        if "%" in text[pos:]:
            bad = text[text.find("%", pos) :][:20]
            raise FilterError(f"{self.where}: '%' must be written '%%' (at {bad!r})")
        out.append(text[pos:])
        return "".join(out)


def _with_local(files: list[Path]) -> list[Path]:
    """Each file followed by its ``.local`` sibling, when that exists and is not listed."""
    out: list[Path] = []
    for path in files:
        out.append(path)
        local = path.with_suffix(".local")
        if local != path and local not in files and local.is_file():
            out.append(local)
    return out


def filter_files(base: Path) -> list[Path]:
    """The files fail2ban reads for filter ``base`` (a path without ``.conf``), in order."""
    directory = Path(str(base) + ".d")
    files = [Path(str(base) + ".conf")]
    files += sorted(directory.glob("*.conf"))
    files.append(Path(str(base) + ".local"))
    files += sorted(directory.glob("*.local"))
    return [f for f in files if f.is_file()]


@dataclass(frozen=True)
class FilterOptions:
    """A filter's options after every substitution, ready to compile."""

    usedns: str | None
    prefregex: str | None
    failregex: tuple[str, ...]
    ignoreregex: tuple[str, ...]
    maxlines: int
    datepattern: str | None
    journalmatch: tuple[str, ...]
    values: Mapping[str, str]  # every combined option (mode, logtype, … for reports)


def resolve_filter(
    conf: ConfFiles, options: Mapping[str, str], *, logtype: str | None = None
) -> FilterOptions:
    """The [Definition] options with the jail's ``options`` and [Init] applied (fail2ban order)."""
    init: dict[str, str] = dict(options)
    if logtype and "logtype" not in init and not conf.has_own_option("Definition", "logtype"):
        init["logtype"] = logtype
    given = dict(init)  # what %(name)s sees besides the files: the jail's options only
    definition: dict[str, str] = {}
    for name in FILTER_OPTIONS:
        if name in given:
            continue
        try:
            definition[name] = conf.get("Definition", name, given)
        except _Missing:
            continue
    for name in conf.own_options("Init"):
        value = conf.get("Init", name)
        if not name.startswith("known/"):
            init["known/" + name] = value
        init.setdefault(name, value)

    combined = {**definition, **init}
    ignore = {c.group(1) for c in map(_CONDITIONAL.match, combined) if c}
    cache: dict[str, str | None] = {}

    def on_demand(name: str) -> str | None:
        if name not in cache:
            try:
                cache[name] = conf.get_ex("Definition", name, given)
            except _Missing:
                cache[name] = None
        return cache[name]

    values = substitute_tags(combined, ignore=ignore, fallback=on_demand)

    def lines(name: str) -> tuple[str, ...]:
        return tuple(x for x in (values.get(name) or "").split("\n") if x)

    maxlines_text = values.get("maxlines")
    try:
        maxlines = int(maxlines_text) if maxlines_text not in (None, "") else 1
    except ValueError:
        maxlines = 0
    if maxlines < 1:
        where = conf.origin("Definition", "maxlines")
        raise FilterError(f"{where}: maxlines = {maxlines_text!r} is not a whole number ≥ 1")
    journal: list[str] = []
    for line in lines("journalmatch"):
        try:
            terms = shlex.split(line)
        except ValueError as exc:
            where = conf.origin("Definition", "journalmatch")
            raise FilterError(f"{where}: journalmatch {line!r}: {exc}") from None
        if terms:
            journal += ["+", *terms] if journal else terms
    return FilterOptions(
        usedns=values.get("usedns"),
        prefregex=values.get("prefregex") or None,
        failregex=lines("failregex"),
        ignoreregex=lines("ignoreregex"),
        maxlines=maxlines,
        datepattern=values.get("datepattern") or None,
        journalmatch=tuple(journal),
        values=values,
    )


def substitute_tags(
    tags: Mapping[str, str],
    *,
    ignore: set[str] | frozenset[str] = frozenset(),
    fallback: Callable[[str], str | None] | None = None,
) -> dict[str, str]:
    """Replace ``<name>`` in every value by ``tags[name]`` (or ``fallback(name)``) until stable.

    Innermost tags go first, so ``<a-<b>>`` becomes ``<a-B>`` and then A-B's value. A tag
    that resolves to nothing stays as it is. A value that needs itself, directly or after
    many rounds, is an error rather than a hang.
    """
    values = dict(tags)
    counts: dict[tuple[str, str], int] = {}
    for _ in range(_MAX_TAG_ROUNDS * 4 + 4):
        changed = False
        for name in list(values):
            if name in ignore:
                continue
            value = values[name]
            pos = 0
            while True:
                m = _TAG.search(value, pos)
                if not m:
                    break
                ref = m.group(1)
                replacement = None
                if ref not in ignore:
                    if ref == name:
                        raise FilterError(f"option {name!r} refers to itself through <{ref}>")
                    replacement = values.get(ref)
                    if replacement is None and fallback is not None:
                        replacement = fallback(ref)
                if replacement is None:
                    pos = m.end()
                    continue
                n = counts.get((name, ref), 0) + 1
                if n > _MAX_TAG_ROUNDS:
                    raise FilterError(f"option {name!r}: <{ref}> keeps expanding (a loop?)")
                counts[(name, ref)] = n
                value = value.replace(m.group(0), replacement)
                pos = m.start()
            if value != values[name]:
                values[name] = value
                changed = True
        if not changed:
            return values
    raise FilterError("filter options refer to each other in a loop")
