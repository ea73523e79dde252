"""``wsdoctor reference``: write the static close-code reference site."""

from __future__ import annotations

from pathlib import Path

import click

from wsdoctor.diagnose.reference import build_site
from wsdoctor.knowledge import LANGS


@click.command(
    epilog="""\b
Examples:
  wsdoctor reference --out site
  wsdoctor reference --out site --lang es
"""
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option("--lang", "langs", type=click.Choice(LANGS), multiple=True, help="Languages (default: all).")
def reference(out: Path, langs: tuple[str, ...]) -> None:
    """Write a static HTML reference of every close code, in English and Spanish."""
    try:
        pages = build_site(out, langs or LANGS)
    except OSError as exc:
        raise click.BadParameter(f"cannot write to {out}: {exc.strerror or exc}", param_hint="'--out'") from None
    click.echo(f"wrote {len(pages)} pages to {out}; open {out / 'index.html'}")
