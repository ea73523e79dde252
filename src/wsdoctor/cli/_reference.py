"""``wsdoctor reference``: write the static close-code reference site."""

from __future__ import annotations

from pathlib import Path

import click

from wsdoctor.cli._lang import default_lang
from wsdoctor.diagnose.reference import build_site
from wsdoctor.knowledge import LANGS, _texts


@click.command(
    epilog="""\b
Examples:
  wsdoctor reference --out site
  wsdoctor reference --out site --lang es
"""
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option(
    "--lang",
    "langs",
    type=click.Choice(LANGS),
    multiple=True,
    help="Languages of the site (default: all). With one, it is also the language of what the command prints; "
    "otherwise that comes from WSDOCTOR_LANG or the locale.",
)
def reference(out: Path, langs: tuple[str, ...]) -> None:
    """Write a static HTML reference of every close code, in English and Spanish."""
    # Here --lang picks the site's languages; the command's own line follows it when
    # there is only one, and the environment otherwise, as every other command's does.
    lang = langs[0] if len(set(langs)) == 1 else default_lang()
    try:
        pages = build_site(out, langs or LANGS)
    except OSError as exc:
        raise click.BadParameter(f"cannot write to {out}: {exc.strerror or exc}", param_hint="'--out'") from None
    wrote: str = _texts(lang)["labels"]["ui"]["reference"]["wrote"]
    click.echo(wrote.format(count=len(pages), out=out, index=out / "index.html"))
