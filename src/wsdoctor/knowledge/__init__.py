"""The close-code registry: every code and range, every cause, in English and Spanish.

Data format
-----------
``data/codes.json`` holds what does not depend on the language: one entry per
registry key (``"1000"`` ... ``"1015"``, ``"3000"``, ``"3003"``, ``"3008"``, and the
ranges ``"0-999"``, ``"1016-2999"``, ``"3000-3999"``, ``"4000-4999"``, ``"5000+"``),
each with ``sendable``, ``stage`` (handshake, tls, open, closing, local), ``sender``
(client, server, either, none), ``on_wire`` and ``range`` (a key of ``ranges``).
Its ``causes`` map gives each cause id its close code (``{"code": 1015}``), or
``null`` for the causes that only say who closed (``closed.by_peer``: the ending
carries whatever code the Close frame held) and, with ``"ends": false``, for causes
that end no connection (a lost pub/sub message); tests require one for every cause.

``data/codes.json`` also holds ``causes``: one object per cause id with ``retry``,
which says whether an ending with that cause is worth dialling again: ``true``
(transient: a refused or reset connection, a server restarting), ``false``
(permanent: an untrusted certificate, a 403, a protocol error), ``"code"`` (a cause
that only says who closed: the close code decides, through each entry's ``retry``)
or ``"status"`` (an HTTP answer to the upgrade: 429 and 5xx are transient).
:func:`is_transient` applies these rules; the reconnecting client follows them.

``data/<lang>.json`` holds the texts: ``entries`` (name, meaning, when, fix, causes
per key), ``causes`` (summary and fix per cause id), ``ranges`` (range labels) and
``labels`` (headings and the words ``compare`` builds sentences from). Tests check
that every language has every key, field and placeholder of every other.

Cause texts may hold ``{placeholders}``; :func:`explain_cause` fills them from the
details it is given and leaves an unknown one empty. By convention the precise
detail of an ending is not a placeholder: renderers show it after the summary.

Who is reading
--------------
The same ending reads differently to the two ends: a 1011 that this side sent
after a keepalive Ping went unanswered is not "the server failed", and the log of
a server speaks to the person who runs the server, not to the client's user. So
besides its plain field (``summary``, ``fix`` for causes; ``meaning``, ``when``,
``fix`` for codes) an entry may hold variants named ``<field>_<tag>``. The tags
are tried most specific first:

1. a variant the ending asks for by itself (``details["variant"]``, such as
   ``ambiguous`` for a TLS chain that may lack an intermediate or may end at an
   untrusted root; or ``unopened`` when the connection never opened: a 1006 from a
   refused dial was not "lost without a Close frame"), written for the ending's
   role first (``unopened_server``), then for any reader;
2. ``<role>_<initiator>``: ``client_local``, ``client_remote``, ``server_local``,
   ``server_remote`` (the role that reports the ending and the side that started it);
3. ``<role>``: ``client`` or ``server``;
4. ``<initiator>``: ``local`` (this side ended it) or ``remote`` (the peer did);

and the plain field is the fallback, so an entry with only ``summary`` and ``fix``
stays valid. Every language must hold the same variants (tests check).
"""

from __future__ import annotations

import enum
import json
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "LANGS",
    "VARIANT_TAGS",
    "CauseEntry",
    "CauseText",
    "CloseCode",
    "Comparison",
    "Explanation",
    "all_entries",
    "cause_code",
    "cause_ids",
    "causes_for",
    "compare",
    "describe_cause",
    "explain",
    "explain_cause",
    "is_sendable",
    "is_transient",
    "retry_rule",
]

LANGS = ("en", "es")

# The suffixes a text field may carry (see "Who is reading" above), apart from an
# ending's own variant such as "ambiguous".
VARIANT_TAGS = (
    "client_local",
    "client_remote",
    "server_local",
    "server_remote",
    "client",
    "server",
    "local",
    "remote",
)


class CloseCode(enum.IntEnum):
    """The close codes with a registered meaning (RFC 6455 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    RESERVED = 1004
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015
    UNAUTHORIZED = 3000
    FORBIDDEN = 3003
    TIMEOUT = 3008


def is_sendable(code: int) -> bool:
    """May ``code`` appear in a Close frame? The protocol core asks on every Close frame."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True)
class Explanation:
    """A registry entry as seen for one code, in one language."""

    code: int
    key: str
    name: str
    range: str
    sendable: bool
    stage: str
    sender: str
    on_wire: bool
    meaning: str
    when: str
    fix: str
    causes: tuple[str, ...]
    lang: str
    headings: tuple[str, str, str]
    retry: bool = False


@dataclass(frozen=True)
class CauseText:
    """What a precise cause means, in one sentence, and what to do about it."""

    cause: str
    summary: str
    fix: str
    lang: str
    retry: bool | str = False


@dataclass(frozen=True)
class CauseEntry:
    """A cause id as the registry describes it: its close code and the full story, in one language.

    ``code`` is ``None`` for causes that carry whatever code the Close frame held;
    ``name`` is then the words for that. ``when`` says at which moment of a
    connection the cause shows up; ``retried`` whether the reconnecting client dials
    again after it, in words (its rule may defer to the close code or the HTTP status).
    """

    cause: str
    code: int | None
    name: str
    summary: str
    when: str
    fix: str
    lang: str
    headings: tuple[str, str, str]
    retried: str = ""


@dataclass(frozen=True)
class Comparison:
    """Two codes side by side; the differences are derived from the structured fields."""

    a: Explanation
    b: Explanation
    differences: tuple[tuple[str, str, str], ...]
    when_each: tuple[str, str]
    lang: str


def _load(name: str) -> Any:
    text = resources.files("wsdoctor.knowledge").joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _codes() -> dict[str, Any]:
    data: dict[str, Any] = _load("codes.json")
    return data


@cache
def _texts(lang: str) -> dict[str, Any]:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")
    data: dict[str, Any] = _load(f"{lang}.json")
    return data


def _key(code: int) -> str:
    if code in (3000, 3003, 3008) or 1000 <= code <= 1015:
        return str(code)
    if 0 <= code <= 999:
        return "0-999"
    if 1016 <= code <= 2999:
        return "1016-2999"
    if 3000 <= code <= 3999:
        return "3000-3999"
    if 4000 <= code <= 4999:
        return "4000-4999"
    return "5000+"


def _tags(role: str | None, initiator: str | None, variant: str | None = None) -> list[str]:
    """Variant suffixes to try for this reader, most specific first."""
    tags = []
    if variant:
        if role in ("client", "server"):
            tags.append(f"{variant}_{role}")
        tags.append(variant)
    sides = initiator if initiator in ("local", "remote") else None
    if role in ("client", "server"):
        if sides:
            tags.append(f"{role}_{sides}")
        tags.append(role)
    if sides:
        tags.append(sides)
    return tags


def _pick(entry: dict[str, Any], field: str, tags: list[str]) -> str:
    for tag in tags:
        text = entry.get(f"{field}_{tag}")
        if text is not None:
            return str(text)
    return str(entry[field])


def _entry(
    code: int,
    key: str,
    lang: str,
    role: str | None = None,
    initiator: str | None = None,
    variant: str | None = None,
) -> Explanation:
    meta = _codes()["entries"][key]
    texts = _texts(lang)
    text = texts["entries"][key]
    labels = texts["labels"]
    tags = _tags(role, initiator, variant)
    return Explanation(
        code=code,
        key=key,
        name=text["name"],
        range=texts["ranges"][meta["range"]],
        sendable=meta["sendable"],
        stage=meta["stage"],
        sender=meta["sender"],
        on_wire=meta["on_wire"],
        meaning=_pick(text, "meaning", tags),
        when=_pick(text, "when", tags),
        fix=_pick(text, "fix", tags),
        causes=tuple(text["causes"]),
        lang=lang,
        headings=(labels["description"], labels["when"], labels["fix"]),
        retry=bool(meta.get("retry", False)),
    )


def explain(
    code: int,
    lang: str = "en",
    *,
    role: str | None = None,
    initiator: str | None = None,
    variant: str | None = None,
) -> Explanation:
    """The registry entry for any integer ``code`` (a range's entry for unregistered codes).

    ``role`` ("client" or "server", the side reading it) and ``initiator`` ("local" or
    "remote", the side that ended the connection) pick the texts written for that
    reader where they differ; without them the texts are the neutral ones.
    ``variant`` (``unopened``) picks the texts for a connection that never opened,
    where the entry has them.
    """
    return _entry(int(code), _key(int(code)), lang, role, initiator, variant)


def all_entries(lang: str = "en") -> list[Explanation]:
    """One explanation per registry entry, in code order, for tables and the reference site."""
    return [_entry(meta["first"], key, lang) for key, meta in _codes()["entries"].items()]


def cause_ids() -> tuple[str, ...]:
    return tuple(_texts("en")["causes"])


def cause_code(cause: str) -> int | None:
    """The close code an ending with this cause has (``None``: the Close frame's own code).

    Raises ``KeyError`` for an id the registry does not hold. A cause with texts but
    no code yet takes the code its family's other causes share, so a new cause is
    shown sensibly before the data catches up (a test still requires the code).
    """
    codes: dict[str, dict[str, Any]] = _codes()["causes"]
    if cause in codes and "code" in codes[cause]:
        code: int | None = codes[cause]["code"]
        return code
    if cause not in _texts("en")["causes"]:
        raise KeyError(cause)
    family = cause.split(".", 1)[0]
    peers = {v["code"] for k, v in codes.items() if k.split(".", 1)[0] == family and "code" in v}
    return peers.pop() if len(peers) == 1 else None


def describe_cause(cause: str, lang: str = "en") -> CauseEntry:
    """The full entry for one cause id: code, what it means, when you see it, the fix.

    Unlike :func:`explain_cause`, which must never fail while an ending is shown,
    this raises ``KeyError`` for an unknown id: it answers a person who asked for
    that id by name. Placeholders show as ``<name>``, as no ending fills them.
    """
    texts = _texts(lang)
    if cause not in texts["causes"]:
        raise KeyError(cause)
    code = cause_code(cause)
    labels = texts["labels"]
    entry = texts["causes"][cause]
    # No ending fills the placeholders here: show where its values would go.
    named = _Named()
    summary, fix = (string.Formatter().vformat(entry[k], (), named).strip() for k in ("summary", "fix"))
    text = CauseText(cause, summary, fix, lang)
    family = cause.split(".", 1)[0]
    if "when" in entry:
        when = _fill(entry["when"], {})
    elif family in labels["cause_when"]:
        when = labels["cause_when"][family]
    else:
        when = explain(code, lang).when if code is not None else ""
    if code is not None:
        name = explain(code, lang).name
    else:
        ends = _codes()["causes"].get(cause, {}).get("ends", True)
        name = labels["any_code"] if ends else labels["no_code"]
    rule = retry_rule(cause)
    retried = labels[{True: "retry_yes", False: "retry_no", "code": "retry_code", "status": "retry_status"}[rule]]
    return CauseEntry(
        cause=cause,
        code=code,
        name=name,
        summary=text.summary,
        when=when,
        fix=text.fix,
        lang=lang,
        headings=(labels["description"], labels["when"], labels["fix"]),
        retried=retried,
    )


def causes_for(code: int) -> tuple[str, ...]:
    """The cause ids whose endings carry ``code``, in registry order, for links from a code's page."""
    key = _key(code)
    return tuple(
        c for c in cause_ids() if (cc := _codes()["causes"].get(c, {}).get("code")) is not None and _key(cc) == key
    )


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class _Named(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def _fill(template: str, details: dict[str, str]) -> str:
    return string.Formatter().vformat(template, (), _Blank(details)).strip()


def explain_cause(
    cause: str,
    lang: str = "en",
    *,
    role: str | None = None,
    initiator: str | None = None,
    variant: str | None = None,
    **details: str,
) -> CauseText:
    """The summary and fix for a cause id; unknown ids fall back to their family, never raise.

    ``role``, ``initiator`` and ``variant`` pick the texts written for that reader
    (see "Who is reading" above); ``details`` fill the placeholders.
    """
    causes = _texts(lang)["causes"]
    key = cause
    if key not in causes:
        family = cause.split(".", 1)[0]
        key = f"{family}.other" if f"{family}.other" in causes else "unknown"
    entry = causes[key]
    tags = _tags(role, initiator, variant)
    summary, fix = _pick(entry, "summary", tags), _pick(entry, "fix", tags)
    return CauseText(cause, _fill(summary, details), _fill(fix, details), lang, retry_rule(cause))


# HTTP answers to an upgrade that say "not now" rather than "never".
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def retry_rule(cause: str) -> bool | str:
    """The retry rule of a cause: True, False, ``"code"`` or ``"status"`` (see the module doc).

    An id the registry does not know takes its family's ``.other`` rule, else False:
    retrying blindly is how a client hammers a server that will never accept it.
    """
    rules: dict[str, dict[str, Any]] = _codes().get("causes", {})
    entry = rules.get(cause) or rules.get(f"{cause.split('.', 1)[0]}.other") or {}
    rule = entry.get("retry", False)
    return rule if isinstance(rule, bool | str) else False


def is_transient(cause: str, code: int | None = None, status: int | None = None) -> bool:
    """Is an ending with this cause (and close code, and HTTP status) worth dialling again?

    ``code`` decides for causes that only say who closed (``closed.by_peer``: a
    1012 restart is transient, a 1008 policy violation is not); ``status`` decides
    for an HTTP answer to the upgrade (429 and 5xx are transient, 401/403/404 are not).
    """
    rule = retry_rule(cause)
    if rule == "code":
        return code is not None and explain(code).retry
    if rule == "status":
        return status in _TRANSIENT_STATUS or (status is not None and 500 <= status <= 599)
    return rule is True


def _word(labels: dict[str, Any], group: str, value: str | bool) -> str:
    return str(labels[group][str(value).lower()])


def compare(a: int, b: int, lang: str = "en") -> Comparison:
    """Two codes side by side, with their differences and when each one applies."""
    ea, eb = explain(a, lang), explain(b, lang)
    labels = _texts(lang)["labels"]
    aspects = [
        ("sender", _word(labels, "sender", ea.sender), _word(labels, "sender", eb.sender)),
        ("on_wire", _word(labels, "on_wire", ea.on_wire), _word(labels, "on_wire", eb.on_wire)),
        ("stage", _word(labels, "stage", ea.stage), _word(labels, "stage", eb.stage)),
        ("sendable", _word(labels, "sendable", ea.sendable), _word(labels, "sendable", eb.sendable)),
        ("range", ea.range, eb.range),
        ("causes", "; ".join(ea.causes), "; ".join(eb.causes)),
    ]
    # Only rows that differ: two codes of one range share every field, so their only
    # difference is the number itself; a code compared with itself has none.
    differences = tuple((labels["aspects"][name], va, vb) for name, va, vb in aspects if va != vb)
    if not differences and a != b:
        differences = ((labels["aspects"]["code"], str(a), str(b)),)
    when_each = (_when(ea, eb, labels), _when(eb, ea, labels))
    return Comparison(ea, eb, differences, when_each, lang)


def _when(x: Explanation, other: Explanation, labels: dict[str, Any]) -> str:
    stage = _word(labels, "stage", x.stage)
    sender = _word(labels, "sender_phrase", x.sender)
    template: str = labels["when_each"]
    cause = x.causes[0] if x.causes else ""
    return template.format(code=x.code, name=x.name, stage=stage, sender=sender, other=other.code, cause=cause)
