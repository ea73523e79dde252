"""The ``--lang`` option every command shares, and where its default comes from.

Kept apart from the other option helpers so that the light commands (``explain``,
``codes``) import nothing heavy to parse it.
"""

from __future__ import annotations

import os

import click

from wsdoctor.knowledge import LANGS

__all__ = ["LANG_OPTION", "default_lang"]

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def default_lang() -> str:
    """``WSDOCTOR_LANG`` when set, else the locale (``es_*`` gives Spanish), else English.

    The locale variables are read in POSIX precedence: the first one that is set and
    not empty decides, as it does for every other program in the same shell.
    """
    chosen = os.environ.get("WSDOCTOR_LANG", "").strip().lower()
    if chosen:
        code = chosen.replace("-", "_").split("_")[0].split(".")[0]
        return code if code in LANGS else "en"
    for variable in LOCALE_VARIABLES:
        value = os.environ.get(variable, "")
        if value:
            return "es" if value.lower().startswith("es") else "en"
    return "en"


LANG_OPTION = click.option(
    "--lang",
    type=click.Choice(LANGS),
    default=default_lang,
    show_default="from WSDOCTOR_LANG or the locale, else en",
    help="Language of every text the command prints (WSDOCTOR_LANG, else LC_ALL, LC_MESSAGES or LANG: es_* gives es).",
)
