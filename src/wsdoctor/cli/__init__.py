"""The ``wsdoctor`` command: explain close codes and diagnose connections."""

from __future__ import annotations

import click

from wsdoctor import __version__
from wsdoctor.cli._check import check
from wsdoctor.cli._connect import connect
from wsdoctor.cli._demo import demo
from wsdoctor.cli._knowledge import codes_cmd, compare_cmd, explain_cmd
from wsdoctor.cli._reference import reference
from wsdoctor.cli._serve import serve

__all__ = ["main"]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  wsdoctor explain 1006           what 1006 means and how to fix it
  wsdoctor compare 1010 1015      two codes side by side
  wsdoctor check wss://host/path  which step of a connection fails, and why
  wsdoctor demo                   diagnose a set of broken local servers
""",
)
@click.version_option(__version__, prog_name="wsdoctor")
def main() -> None:
    """Tell why a WebSocket connection ended, and how to fix it."""


main.add_command(explain_cmd, "explain")
main.add_command(compare_cmd, "compare")
main.add_command(codes_cmd, "codes")
main.add_command(check)
main.add_command(connect)
main.add_command(serve)
main.add_command(demo)
main.add_command(reference)
