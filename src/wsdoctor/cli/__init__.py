"""The ``wsdoctor`` command: explain close codes and diagnose connections.

Every command ends the same three ways, whatever went wrong inside it: bad input
(a usage error, or an argument the library refused) prints one line on stderr and
exits 2; Ctrl-C exits 130 without a word; anything unexpected prints one line, not
a Python traceback, and exits 1 (``WSDOCTOR_TRACEBACK=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from wsdoctor import __version__
from wsdoctor.cli._check import check
from wsdoctor.cli._connect import connect
from wsdoctor.cli._demo import demo
from wsdoctor.cli._knowledge import codes_cmd, compare_cmd, explain_cmd
from wsdoctor.cli._reference import reference
from wsdoctor.cli._serve import serve
from wsdoctor.protocol._errors import WebSocketError

__all__ = ["main"]

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(where: str, message: str, status: int) -> NoReturn:
    click.echo(f"{where}: error: {_one_line(message)}", err=True)
    sys.exit(status)


class Wsdoctor(click.Group):
    """The command group, with one exit policy for every command (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Click would print an empty line and "Aborted!" and exit 1.
            raise click.exceptions.Exit(INTERRUPTED_EXIT) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        where = prog_name or "wsdoctor"
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), err=True)
            sys.exit(USAGE_EXIT)
        except click.UsageError as exc:
            message = exc.format_message()
            if exc.ctx is not None:
                where = exc.ctx.command_path
                message += f" (see '{where} --help')"
            _fail(where, message, USAGE_EXIT)
        except click.Abort:
            sys.exit(INTERRUPTED_EXIT)
        except click.ClickException as exc:
            _fail(where, exc.format_message(), exc.exit_code)
        except WebSocketError as exc:
            # An argument the library refused that no option check caught first.
            bad_input = exc.ending.cause.startswith("input.")
            _fail(where, str(exc), USAGE_EXIT if bad_input else 1)
        except KeyboardInterrupt:
            sys.exit(INTERRUPTED_EXIT)
        except BrokenPipeError:
            # The reader went away (`wsdoctor codes | head`): nothing left to say.
            # Point stdout at /dev/null so the flush at exit does not fail a second time.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:
            if os.environ.get("WSDOCTOR_TRACEBACK"):
                traceback.print_exc()
            _fail(where, f"unexpected {type(exc).__name__}: {exc} (set WSDOCTOR_TRACEBACK=1 to see where)", 1)
        if not standalone_mode:
            return status
        sys.exit(status if isinstance(status, int) else 0)


@click.group(
    cls=Wsdoctor,
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
