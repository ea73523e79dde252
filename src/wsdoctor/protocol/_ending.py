"""How a connection, or an attempt to open one, ended.

Every way a WebSocket ends (a Close frame from either side, a protocol violation, a
lost socket, a failed TLS handshake, a refused dial) is folded into one value, an
:class:`Ending`. The same value is raised with exceptions, exposed on finished
connections, written to logs and rendered by the command line, so the story of a
connection is told once, in one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from wsdoctor.protocol._redact import redact_text

if TYPE_CHECKING:
    from wsdoctor.knowledge import CauseText, Explanation

__all__ = ["CloseFrame", "Ending", "Initiator", "Role"]

Initiator = Literal["local", "remote", "none"]
# The side that reports an ending: "local" and "remote" are relative to it.
Role = Literal["client", "server"]

# Causes that say who closed but not why: the close code's own text explains more.
_GENERIC_CAUSES = frozenset({"closed.by_peer", "closed.locally", "closed.no_status"})


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """The payload of a Close frame as it travelled on the wire.

    ``code`` is ``None`` for a Close frame with an empty payload (reported as 1005).
    """

    code: int | None
    reason: str = ""

    def __str__(self) -> str:
        if self.code is None:
            return "no status code"
        return f"{self.code} ({self.reason})" if self.reason else str(self.code)


@dataclass(frozen=True, slots=True)
class Ending:
    """One value that says how a connection or a dial ended, and why.

    ``code`` is the close code that describes the ending, including the local-only
    ones: 1005 (Close frame without a code), 1006 (no Close frame at all) and 1015
    (TLS handshake failure). ``cause`` is a stable machine-readable id such as
    ``protocol.masked_frame`` or ``tls.expired``; ``detail`` is the human specific
    (the expiry date, the missing extension names) that makes the fix concrete.

    ``initiator`` says which side ended it, relative to ``role``, the side that
    reports it ("client" or "server"; ``None`` when unknown, as in the sans-I/O core
    before the I/O layer stamps it). The texts depend on both: a 1011 this client
    sent because the server stopped answering pings is explained differently from a
    1011 the server sent, and a server's log speaks to whoever runs the server.
    ``details`` fill the texts' placeholders; ``details["variant"]`` asks for a text
    variant of the cause (for instance ``ambiguous``).
    """

    code: int
    cause: str
    reason: str = ""
    initiator: Initiator = "none"
    sent: CloseFrame | None = None
    received: CloseFrame | None = None
    received_first: bool | None = None
    clean: bool = False
    detail: str = ""
    details: dict[str, str] = field(default_factory=dict)
    role: Role | None = None

    def with_role(self, role: Role) -> Ending:
        """This ending as reported by ``role``; unchanged when a role is already set."""
        if self.role is not None:
            return self
        return replace(self, role=role)

    def __post_init__(self) -> None:
        # Details quote URLs and error messages; an ending is logged and printed, so a
        # password or a credential header in them is masked here, whoever built it.
        if self.detail:
            object.__setattr__(self, "detail", redact_text(self.detail))

    @property
    def ok(self) -> bool:
        """True for an orderly ending (1000 or 1001 through a complete close handshake)."""
        return self.clean and self.code in (1000, 1001)

    def explanation(self, lang: str = "en") -> Explanation:
        """The registry entry for this ending's close code, in ``lang``."""
        from wsdoctor.knowledge import explain

        return explain(self.code, lang, role=self.role, initiator=self.initiator)

    def cause_text(self, lang: str = "en") -> CauseText:
        """The text for this ending's precise cause: a summary and a fix that fit it."""
        from wsdoctor.knowledge import explain_cause

        details = dict(self.details)
        variant = details.pop("variant", None)
        return explain_cause(
            self.cause, lang, role=self.role, initiator=self.initiator, variant=variant, detail=self.detail, **details
        )

    @property
    def name(self) -> str:
        return self.explanation().name

    def fix_text(self, lang: str = "en") -> str:
        """The fix to show: the cause's own, or the code's when the cause only says who closed."""
        if self.cause in _GENERIC_CAUSES:
            return self.explanation(lang).fix
        return self.cause_text(lang).fix

    @property
    def fix(self) -> str:
        return self.fix_text()

    def sentence(self, lang: str = "en") -> str:
        """One sentence a person can act on: what happened, the code, the cause."""
        text = self.cause_text(lang)
        name = self.explanation(lang).name
        head = f"{self.code} {name}"
        if self.reason:
            head += f" ({self.reason!r})"
        return f"{head}: {text.summary}"

    def __str__(self) -> str:
        return self.sentence()

    def to_dict(self, lang: str = "en") -> dict[str, object]:
        """A JSON-ready form, stable for logs and the command line's ``--json``."""
        exp = self.explanation(lang)
        text = self.cause_text(lang)
        return {
            "code": self.code,
            "name": exp.name,
            "cause": self.cause,
            "reason": self.reason,
            "initiator": self.initiator,
            "role": self.role,
            "clean": self.clean,
            "sent": None if self.sent is None else {"code": self.sent.code, "reason": self.sent.reason},
            "received": (
                None if self.received is None else {"code": self.received.code, "reason": self.received.reason}
            ),
            "received_first": self.received_first,
            "detail": self.detail,
            "summary": text.summary,
            "explanation": exp.meaning,
            "when": exp.when,
            "fix": self.fix_text(lang),
        }
