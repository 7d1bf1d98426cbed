"""Argument parsing shared by the ``scmm`` commands: one-line errors and common options."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import NoReturn


class UsageError(ValueError):
    """A bad command-line argument, found after parsing (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line naming the fix.

    argparse prints the usage block before the error; in a pipeline log one line saying what
    was wrong and where to read more is easier to find.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line with a pointer to ``--help`` and exit with code 2."""
        message = " ".join(message.split())
        print(f"{self.prog}: error: {message}; see `{self.prog} --help`.", file=sys.stderr)
        raise SystemExit(2)


INPUT_MODALITIES = ("rna", "prot", "atac")

#: A Python keyword argument as scmm's messages quote it: `name` or `name=value`.
_KEYWORD = re.compile(r"`(\w+)(?:=([^`]*))?`")

#: Python values whose command-line option takes another word: `normalize=True` (the model
#: normalises raw counts) is what `--normalize auto` does.
_VALUES = {("normalize", "True"): "auto", ("normalize", "False"): "none"}


def cli_spelling(text: str, parser: argparse.ArgumentParser) -> str:
    """Spell the Python keyword arguments quoted in ``text`` as ``parser``'s options.

    scmm's library messages name the Python argument (`allow_missing_features=True`,
    `min_feature_overlap=0.9`); from the command line the user passes
    `--allow-missing-features`, `--min-feature-overlap 0.9`. Only arguments the command has an
    option for, with a value that option accepts, are respelled; the rest stay as they are.
    """
    options = {a.dest: a for a in parser._actions if a.option_strings}

    def spell(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        action = options.get(name)
        if action is None:
            return match.group(0)
        flag = max(action.option_strings, key=len)
        if value is None:
            return f"`{flag}`"
        if action.nargs == 0:  # a switch: only its "on" value has a spelling
            return f"`{flag}`" if value == repr(not action.default) else match.group(0)
        value = _VALUES.get((name, value), value.strip("'\""))
        try:
            ok = action.type is None or action.type(value) is not None
        except ValueError:
            ok = False
        if not ok or (action.choices is not None and value not in action.choices):
            return match.group(0)
        return f"`{flag} {value}`"

    return _KEYWORD.sub(spell, text)


def add_inputs(parser: argparse.ArgumentParser, *, what: str, single: str | None) -> None:
    """Add the input options: a positional ``.h5mu`` (``.h5``, ``.h5ad``) or one ``.h5ad`` each.

    ``single`` says what a lone ``.h5ad`` holds (``None``: not accepted).
    """
    alone = f", or a .h5ad file of {single}" if single else ""
    parser.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help=f"{what}: a .h5mu file, a 10x Genomics .h5 (Cell Ranger's "
        f"filtered_feature_bc_matrix.h5: Gene Expression becomes 'rna', Antibody Capture "
        f"'prot', Peaks 'atac'){alone} (or use --rna, --prot, --atac, --mod instead)",
    )
    for mod in INPUT_MODALITIES:
        parser.add_argument(
            f"--{mod}",
            metavar="FILE",
            default=None,
            help=f"a .h5ad file holding the {mod!r} modality (instead of DATA)",
        )
    parser.add_argument(
        "--mod",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a .h5ad file holding the modality NAME (any name; repeat for several); cells of "
        "all files are matched by name",
    )


def input_files(args: argparse.Namespace) -> dict[str, str]:
    """Return the ``{modality: .h5ad path}`` given by ``--rna``/``--prot``/``--atac``/``--mod``."""
    files = {mod: getattr(args, mod) for mod in INPUT_MODALITIES if getattr(args, mod)}
    for item in args.mod:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            msg = f"`--mod {item}` is not of the form NAME=FILE (e.g. `--mod adt=adt.h5ad`)"
            raise UsageError(msg)
        if name in files:
            msg = f"modality {name!r} is given twice; pass one file per modality"
            raise UsageError(msg)
        files[name] = path
    return files


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` and ``--quiet``."""
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder of scmm's data files (gene annotations, gene sets, datasets); default: "
        "$SCMM_DATA_DIR, then the user cache",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but errors and warnings (no progress bars, steps or tables); results "
        "are still written to the output files",
    )


def parse_params(items: list[str]) -> dict[str, object]:
    """Parse ``--param key=value`` items; values are JSON (``2``, ``0.1``, ``[256,256]``, ``true``).

    A value that is not JSON is kept as a string, so ``--param loss=mse`` works unquoted.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            msg = f"`--param {item}` is not of the form key=value (e.g. `--param max_epochs=10`)"
            raise UsageError(msg)
        if key in out:
            msg = f"`--param {key}` is given twice; pass each parameter once"
            raise UsageError(msg)
        words = {"None": None, "True": True, "False": False}
        if raw in words:
            out[key] = words[raw]
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
