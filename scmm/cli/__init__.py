"""The ``scmm`` console script (also ``python -m scmm``): demo, fit, predict, evaluate.

One module per command; each adds its subparser (``add_parser``) and runs it (``run``).
Exit codes: 0 success, 1 the input or a step failed, 2 a bad command-line argument. Errors
are one line on stderr that names the fix (no traceback); an unexpected exception (a bug)
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import _demo, _evaluate, _fit, _predict
from ._args import Parser, UsageError, cli_spelling
from ._demo import demo
from ._io import Reporter

__all__ = ["cli_spelling", "demo", "main"]

_DESCRIPTION = (
    "Predict one single-cell modality from another. Commands: fit (train a model on paired "
    "cells, save it, score held-out cells), predict (apply a saved model to new cells), "
    "evaluate (score stored predictions against measured values), demo (every method on a real "
    "dataset). Run `scmm COMMAND --help` for the options of each."
)

#: Errors that come from the user's input; shown as one line (anything else is a bug).
_USER_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError, ImportError)


def _parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="scmm", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"scmm {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for module in (_fit, _predict, _evaluate, _demo):
        module.add_parser(sub)
    return parser


def _one_line(err: BaseException, command: argparse.ArgumentParser) -> str:
    """Return the error as one line, Python arguments spelled as ``command``'s options."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return cli_spelling(" ".join(str(text).split()), command)


def _warnings_as_lines(command: argparse.ArgumentParser):
    """``warnings.showwarning`` printing each warning as one ``scmm: warning: ...`` line."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = cli_spelling(" ".join(str(message).split()), command)
        print(f"scmm: warning: {text}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scmm`` console script; returns the exit code.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    0 on success, 1 when the input or a step failed, 2 for a bad argument.
    """
    from .._settings import settings

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    prog = f"scmm {args.command}"
    command = next(a for a in parser._actions if a.dest == "command").choices[args.command]
    report = Reporter(args.command, quiet=args.quiet)
    verbose = settings.verbose
    # progress bars on a terminal only: a pipeline's log gets the step lines
    settings.verbose = not args.quiet and sys.stderr.isatty()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warnings_as_lines(command)
            # a gene and a protein may share a name (CD4): MuData's warning is expected
            warnings.filterwarnings("ignore", message="var_names are not unique")
            warnings.filterwarnings("ignore", category=FutureWarning, module="mudata|muon|anndata")
            return args.run(args, report)
    except UsageError as err:
        print(f"{prog}: error: {_one_line(err, command)}; see `{prog} --help`.", file=sys.stderr)
        return 2
    except _USER_ERRORS as err:
        print(f"{prog}: error: {_one_line(err, command)}", file=sys.stderr)
        return 1
    finally:
        settings.verbose = verbose
