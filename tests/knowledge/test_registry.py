"""The close-code registry: complete in every language, exact on the sendable table."""

from __future__ import annotations

import json
import re
import string
from importlib import resources

import pytest

from wsdoctor.knowledge import (
    LANGS,
    CloseCode,
    all_entries,
    cause_code,
    cause_ids,
    causes_for,
    compare,
    describe_cause,
    explain,
    explain_cause,
    is_sendable,
)


def data(name: str) -> dict[str, object]:
    text = resources.files("wsdoctor.knowledge").joinpath("data", name).read_text(encoding="utf-8")
    result: dict[str, object] = json.loads(text)
    return result


def keys_of(obj: object, prefix: str = "") -> set[str]:
    if isinstance(obj, dict):
        out = set()
        for k, v in obj.items():
            out |= {f"{prefix}{k}"} | keys_of(v, f"{prefix}{k}.")
        return out
    return set()


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def walk(obj: object, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out |= walk(v, f"{prefix}{k}.")
        return out
    if isinstance(obj, list):
        return {f"{prefix}{i}": str(v) for i, v in enumerate(obj)}
    return {prefix: str(obj)}


def test_languages_have_the_same_keys_and_placeholders() -> None:
    en, es = walk(data("en.json")), walk(data("es.json"))
    assert keys_of(data("en.json")) == keys_of(data("es.json"))
    for key, text in en.items():
        if key in es:
            assert placeholders(text) == placeholders(es[key]), key


@pytest.mark.parametrize("lang", LANGS)
def test_every_entry_has_every_field(lang: str) -> None:
    entries = all_entries(lang)
    assert len(entries) == len(data("codes.json")["entries"])  # type: ignore[arg-type]
    for e in entries:
        for field in ("name", "meaning", "when", "fix", "range", "stage", "sender"):
            assert getattr(e, field).strip(), (lang, e.key, field)
        assert e.causes and all(c.strip() for c in e.causes)
        assert all(h.strip() for h in e.headings)


@pytest.mark.parametrize("lang", LANGS)
def test_every_cause_has_text(lang: str) -> None:
    for cause in cause_ids():
        text = explain_cause(cause, lang)
        assert text.summary.strip() and text.fix.strip(), (lang, cause)


def test_headings_in_spanish() -> None:
    assert explain(1000, "es").headings == ("Descripción", "Cuándo lo verás", "Cómo solucionarlo")
    assert explain(1000, "en").headings == ("Description", "When you'll see it", "How to fix it")


def test_sendable_table_is_exact() -> None:
    for code in range(-5, 70_000):
        expected = 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
        assert is_sendable(code) is expected, code


@pytest.mark.parametrize("code", [*range(0, 5101, 7), -1, 65535, 70000, 1004, 1005, 1006, 1015])
def test_any_integer_is_explained(code: int) -> None:
    for lang in LANGS:
        exp = explain(code, lang)
        assert exp.code == code
        assert exp.sendable is is_sendable(code) or exp.key in ("3000-3999",)


def test_ranges_and_registered_codes() -> None:
    assert explain(4001).key == "4000-4999" and "private" in explain(4001).name.lower()
    assert explain(4001, "es").name.startswith("Uso privado")
    assert [explain(c).name for c in (3000, 3003, 3008)] == ["Unauthorized", "Forbidden", "Timeout"]
    assert explain(3001).key == "3000-3999"
    assert explain(2000).key == "1016-2999" and not explain(2000).sendable
    assert explain(999).key == "0-999"
    assert explain(5000).key == "5000+"
    for code in (1005, 1006, 1015):
        exp = explain(code)
        assert not exp.on_wire and not exp.sendable and exp.sender == "none"
    assert explain(1010).sender == "client" and explain(1010).stage == "handshake"
    assert explain(1015).stage == "tls"


def test_close_code_enum() -> None:
    assert CloseCode.MANDATORY_EXTENSION == 1010
    assert CloseCode.TLS_HANDSHAKE == 1015
    assert {explain(c).name for c in CloseCode}  # every member has an entry


def test_unknown_language() -> None:
    with pytest.raises(ValueError, match="en, es"):
        explain(1000, "fr")


def test_cause_fallbacks() -> None:
    assert explain_cause("tls.something_new").cause == "tls.something_new"
    assert explain_cause("tls.something_new").summary == explain_cause("tls.other").summary
    assert explain_cause("protocol.new").summary == explain_cause("protocol.other").summary
    assert explain_cause("zzz").summary == explain_cause("unknown").summary


def test_placeholders_are_filled_or_blank() -> None:
    from wsdoctor.knowledge import _fill

    assert _fill("a {x} b", {"x": "1"}) == "a 1 b"
    assert _fill("a {missing}", {}) == "a"


@pytest.mark.parametrize("lang", LANGS)
def test_compare_every_pair(lang: str) -> None:
    codes = [*range(1000, 1016), 3000, 3008, 4001, 2000]
    for a in codes:
        for b in codes:
            comp = compare(a, b, lang)
            if explain(a).key != explain(b).key:
                assert comp.differences, (a, b)
            assert all(s.strip() for s in comp.when_each)
            assert str(a) in comp.when_each[0] and str(b) in comp.when_each[1]


def test_compare_reflects_structured_fields() -> None:
    comp = compare(1006, 1000)
    by_aspect = {k: (x, y) for k, x, y in comp.differences}
    assert by_aspect["On the wire"] == ("local only, never on the wire", "sent in a Close frame")
    assert by_aspect["Sendable"] == ("must not be sent", "may be sent")
    comp_es = compare(1010, 1015, "es")
    assert "Quién lo envía" in {k for k, _, _ in comp_es.differences}


def test_texts_mention_the_fix_essentials() -> None:
    fix1010 = explain(1010).fix
    assert "Sec-WebSocket-Extensions" in fix1010 and "permessage-deflate" in fix1010
    assert "max_size" in explain(1009).fix
    assert re.search(r"proxy|proxies", explain(1006).when)


# ------------------------------------------------------- who is reading


def test_variants_are_well_formed() -> None:
    """Every variant names a field that exists and a tag that something can select."""
    from wsdoctor.knowledge import VARIANT_TAGS

    tags = {*VARIANT_TAGS, "ambiguous"}
    for lang in LANGS:
        texts = data(f"{lang}.json")
        groups = [
            (texts["entries"], ("meaning", "when", "fix")),  # type: ignore[index]
            (texts["causes"], ("summary", "fix")),  # type: ignore[index]
        ]
        for group, fields in groups:
            for key, entry in group.items():
                for name in entry:
                    if name in (*fields, "name", "causes"):
                        continue
                    field, _, tag = name.partition("_")
                    assert field in fields and field in entry and tag in tags, (lang, key, name)


def test_variants_are_picked_most_specific_first() -> None:
    assert explain(1011).meaning.startswith("An endpoint hit an unexpected condition")
    assert explain(1011, role="client", initiator="local").meaning.startswith("This side ended")
    assert explain(1011, role="server", initiator="local").meaning.startswith("This side ended")
    assert explain(1011, role="client", initiator="remote").meaning.startswith("The server hit")
    assert explain(1011, role="server", initiator="remote").meaning.startswith("The client hit")
    assert explain(1011, initiator="remote").meaning == explain(1011).meaning  # no role: neutral
    assert explain(1011, role="client", initiator="none").fix == explain(1011).fix
    # A cause: the role's text, else the plain one; an ending's own variant first.
    assert explain_cause("tcp.closed", role="server").fix.startswith("The client went away")
    assert explain_cause("tcp.closed", role="client").fix.startswith("Check the server's logs")
    assert explain_cause("tcp.refused", role="client") == explain_cause("tcp.refused")
    ambiguous = explain_cause("tls.untrusted", role="client", variant="ambiguous", issuer="X")
    assert ambiguous.fix.startswith("If X is a root CA") and "If X" in ambiguous.fix
    assert explain_cause("tls.untrusted", variant="no-such-variant") == explain_cause("tls.untrusted")


def test_1011_may_come_from_either_side() -> None:
    """RFC 6455 errata 3227 and the IANA registry: either endpoint may send 1011."""
    for lang in LANGS:
        exp = explain(1011, lang)
        assert exp.sender == "either"
        assert "server" not in exp.meaning.split(".")[0].lower() and "servidor" not in exp.meaning.split(".")[0]
    assert "3227" in explain(1011).meaning and "3227" in explain(1011, "es").meaning


def test_new_tls_causes_follow_their_anchor() -> None:
    for lang in LANGS:
        ids = list(data(f"{lang}.json")["causes"])  # type: ignore[call-overload]
        at = ids.index("tls.other")
        assert ids[at + 1 : at + 3] == ["tls.client_cert_required", "tls.wrong_purpose"]


def test_every_cause_says_whether_it_is_retried() -> None:
    rules = data("codes.json")["causes"]
    assert isinstance(rules, dict)
    for cause in cause_ids():
        assert cause in rules, cause
        assert rules[cause]["retry"] in (True, False, "code", "status"), cause
    entries = data("codes.json")["entries"]
    assert isinstance(entries, dict)
    assert all(isinstance(entry["retry"], bool) for entry in entries.values())


@pytest.mark.parametrize(
    ("cause", "code", "status", "transient"),
    [
        ("tcp.refused", None, None, True),
        ("tcp.reset", None, None, True),
        ("dns.temporary", None, None, True),
        ("dns.not_found", None, None, False),
        ("tls.untrusted", None, None, False),
        ("tls.expired", None, None, False),
        ("tls.hostname", None, None, False),
        ("proxy.auth", None, None, False),
        ("proxy.unreachable", None, None, True),
        ("redirect.downgrade", None, None, False),
        ("handshake.status", None, 503, True),
        ("handshake.status", None, 429, True),
        ("handshake.status", None, 401, False),
        ("handshake.status", None, 403, False),
        ("handshake.status", None, 404, False),
        ("http.too_many_requests", None, 429, True),
        ("http.bad_gateway", None, 502, True),
        ("http.server_error", None, 500, True),
        ("http.unauthorized", None, 401, False),
        ("http.forbidden", None, 403, False),
        ("http.not_found", None, 404, False),
        *[("closed.by_peer", code, None, True) for code in (1001, 1011, 1012, 1013, 1014)],
        *[("closed.by_peer", code, None, False) for code in (1000, 1002, 1003, 1007, 1008, 1010, 4000)],
        ("tcp.closed", 1006, None, True),
        ("protocol.masked_frame", 1002, None, False),
        ("no.such_cause", None, None, False),
    ],
)
def test_transient_or_permanent(cause: str, code: int | None, status: int | None, transient: bool) -> None:
    from wsdoctor.knowledge import is_transient

    assert is_transient(cause, code, status) is transient


def test_cause_text_and_explanation_carry_the_retry_flag() -> None:
    assert explain_cause("tcp.refused").retry is True
    assert explain_cause("tls.expired", "es").retry is False
    assert explain_cause("closed.by_peer").retry == "code"
    assert explain(1012).retry and not explain(1008).retry


# ------------------------------------------------------- causes and their codes

# Causes that only say who closed: the ending carries the Close frame's own code.
ANY_CODE = {"closed.by_peer", "closed.locally"}


def test_every_cause_has_a_close_code() -> None:
    """codes.json gives every cause in en.json its code; add one there for each new cause."""
    codes = data("codes.json")["causes"]
    assert isinstance(codes, dict)
    missing = [c for c in cause_ids() if c not in codes]
    assert not missing, f"add to codes.json 'causes': {missing}"
    assert not set(codes) - set(cause_ids()), "codes.json names causes that have no text"
    for cause in cause_ids():
        code = codes[cause]["code"]
        if cause in ANY_CODE or codes[cause].get("ends") is False:
            assert code is None, cause
        else:
            assert isinstance(code, int) and 1000 <= code <= 4999, cause
            assert cause_code(cause) == code


@pytest.mark.parametrize("lang", LANGS)
def test_every_cause_can_be_described(lang: str) -> None:
    for cause in cause_ids():
        entry = describe_cause(cause, lang)
        assert entry.summary and entry.when and entry.fix, cause
        assert "{" not in entry.summary + entry.fix, cause
        if entry.code is not None:
            assert entry.name == explain(entry.code, lang).name
    with pytest.raises(KeyError):
        describe_cause("tls.nonexistent")
    assert describe_cause("tls.expired").code == 1015
    assert "TLS" in describe_cause("tls.expired").when
    assert "tls.expired" in causes_for(1015) and "tls.expired" not in causes_for(1006)
    assert causes_for(4001) == ()


def test_compare_lists_only_differences() -> None:
    assert compare(1000, 1000).differences == ()
    assert [aspect for aspect, _, _ in compare(4000, 4001).differences] == ["Code"]
    for aspect, x, y in compare(1006, 1015).differences + compare(1000, 1001).differences:
        assert x != y, aspect
