"""`python -m lit_gan COMMAND ...`: one command map for the nine commands.

fit, validate, test and predict are LightningCLI subcommands (`lit_gan.lightning_cli`); export, sweep, compare and
dashboard are functions whose typed, documented signatures jsonargparse turns into their options (`--help` shows the
docstrings); style groups the function commands add, list and show (`style add NAME ...`). From the command line,
a user error (a bad config or sweep file, unusable data, a missing or refused checkpoint or style file, a diverged
run) ends with one `error: ...` line and exit code 1, without a traceback; from Python (`main(args=[...])`) the
exception propagates.
"""

import sys
from collections.abc import Callable
from inspect import signature
from pathlib import Path
from types import NoneType, UnionType
from typing import Union, get_args, get_origin, get_type_hints

from docstring_parser import parse as parse_docstring
from jsonargparse import ArgumentError, ArgumentParser

from lit_gan.app import AppError, app_command
from lit_gan.callbacks import TrainingDiverged
from lit_gan.export import ExportError, export_command
from lit_gan.image_io import ImageReadError
from lit_gan.lightning_cli import (
    CheckpointNotFound,
    DataConfigError,
    DataNotFound,
    LitGANCLI,
    RunConfigCallback,
    argument_error_reason,
    lightning_cli,
    rejected_arguments,
)
from lit_gan.runs import CheckpointError
from lit_gan.serving import ServingError
from lit_gan.style_command import style_add, style_list, style_show, style_train
from lit_gan.styles import StyleError
from lit_gan.sweep.command import run_sweep
from lit_gan.sweep.compare import CompareError, compare_command
from lit_gan.sweep.config import SweepConfigError
from lit_gan.sweep.workspace import DashboardError, dashboard_command

__all__ = ["COMMANDS", "USER_ERRORS", "CheckpointNotFound", "LitGANCLI", "RunConfigCallback", "main"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def sweep_command(file: Path, count: int | None = None, parallel: int = 1, out: Path | None = None) -> int:
    """Run a sweep file in W&B's format offline; running the same command again resumes it.

    Args:
        file: sweep YAML in W&B's format, e.g. sweeps/quickstart_grid.yaml.
        count: trials in all (default: the grid, or the file's run_cap).
        parallel: trials at once, as separate processes.
        out: the sweep's folder (default runs/sweeps/<name>).

    Returns:
        0 when the sweep ran, 130 when interrupted (Ctrl-C).

    Raises:
        SweepConfigError: naming the file and what to fix, before any trial starts.
    """
    return run_sweep(file, count, parallel, out, check_arguments=rejected_arguments)


FUNCTION_COMMANDS: dict[str, Callable[..., int]] = {
    "export": export_command,
    "sweep": sweep_command,
    "compare": compare_command,
    "dashboard": dashboard_command,
    "app": app_command,
}
GROUP_COMMANDS: dict[str, dict[str, Callable[..., int]]] = {
    "style": {"add": style_add, "list": style_list, "show": style_show, "train": style_train},
}
"""Commands with subcommands (`style add NAME ...`): each subcommand a function command."""
COMMANDS: dict[str, Callable | dict] = {
    **dict.fromkeys(LIGHTNING_COMMANDS, lightning_cli),
    **FUNCTION_COMMANDS,
    **GROUP_COMMANDS,
}
"""Each command of `python -m lit_gan` and what runs it: `lightning_cli` takes the whole argument list (subcommand
first), a function command its own arguments, parsed from its signature."""
USER_ERRORS: tuple[type[Exception], ...] = (
    AppError,
    CheckpointError,
    CheckpointNotFound,
    CompareError,
    DashboardError,
    DataConfigError,
    DataNotFound,
    ExportError,
    ImageReadError,
    ServingError,
    StyleError,
    SweepConfigError,
    TrainingDiverged,
)
"""Errors that the user fixes (the message says how): the command line prints the message, not a traceback."""


def main(args: list[str] | None = None, run: bool = True) -> LitGANCLI:
    """Run the command in `args` (`sys.argv[1:]` when None; a list for tests and notebooks).

    Args:
        args: the command and its arguments, e.g. `["fit", "--config", "configs/quickstart.yaml"]`.
        run: for fit, validate, test and predict: run the subcommand, or only build the CLI (model, data, trainer).

    Returns:
        The LitGANCLI of fit, validate, test and predict; the other commands exit with their code (SystemExit).
    """
    if args is not None:  # from Python: the exception is the interface (jsonargparse's errors exit with code 2)
        return dispatch(args, run)
    try:
        return dispatch(None, run, exit_on_error=False)
    except ArgumentError as error:  # from the command line: the message, not the usage or a traceback
        print(f"error: {argument_error_reason(str(error))}", file=sys.stderr)
        raise SystemExit(2) from None
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(1) from None


def dispatch(args: list[str] | None, run: bool = True, exit_on_error: bool = True) -> LitGANCLI:
    """Run the command `args[0]` from `COMMANDS` on `args`; without a known command, print the command map.

    Args:
        args: the command and its arguments (`sys.argv[1:]` when None).
        run: see `main`.
        exit_on_error: on a bad argument, print the usage and the error and exit (code 2), as jsonargparse does;
            if false, raise `jsonargparse.ArgumentError`.
    """
    argv = sys.argv[1:] if args is None else args
    name = argv[0] if argv else None
    if name in LIGHTNING_COMMANDS or not run:  # run=False: LightningCLI without a subcommand (build, do not run)
        return lightning_cli(args, run, exit_on_error)
    if name in FUNCTION_COMMANDS:
        prog = f"python -m lit_gan {name}"
        raise SystemExit(call_function(FUNCTION_COMMANDS[name], argv[1:], prog, exit_on_error))
    if name in GROUP_COMMANDS:
        group, sub = GROUP_COMMANDS[name], (argv[1] if len(argv) > 1 else None)
        if sub in group:
            raise SystemExit(call_function(group[sub], argv[2:], f"python -m lit_gan {name} {sub}", exit_on_error))
        help_asked = sub in ("-h", "--help")
        lines = [f"usage: python -m lit_gan {name} {{{','.join(group)}}} [--help] ...", "", "subcommands:"]
        print("\n".join(lines + [f"  {k:<9} {summary(f)}" for k, f in group.items()]),
              file=sys.stdout if help_asked else sys.stderr)  # fmt: skip
        if help_asked:
            raise SystemExit(0)
        print(f"error: {name} needs a subcommand: {', '.join(group)} (got {sub!r})", file=sys.stderr)
        raise SystemExit(2)
    print(usage(), file=sys.stdout if name in ("-h", "--help") else sys.stderr)
    if name in ("-h", "--help"):
        raise SystemExit(0)
    print(f"error: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
    raise SystemExit(2)


def usage() -> str:
    """The command map for `python -m lit_gan --help`: each command with the first line of what it does."""
    lines = ["usage: python -m lit_gan COMMAND [--help] ...", "", "commands:"]
    lines += [f"  {name:<9} LightningCLI's trainer.{name} (lit_gan.lightning_cli)" for name in LIGHTNING_COMMANDS]
    lines += [f"  {name:<9} {summary(function)}" for name, function in FUNCTION_COMMANDS.items()]
    lines += [f"  {name:<9} {', '.join(group)}: the style bank (lit_gan.styles)" for name, group in
              GROUP_COMMANDS.items()]  # fmt: skip
    return "\n".join(lines)


def summary(function: Callable) -> str:
    """The first line of `function`'s docstring."""
    return (function.__doc__ or "").strip().splitlines()[0]


def one_line(error: Exception) -> str:
    """The error's message on one line: a multi-line message (e.g. data.strict's list of files) joined with "; "."""
    head, *rest = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return f"{head} {'; '.join(rest)}" if rest else head


# -- function commands: typed signatures parsed by jsonargparse ------------------------------------------------------


def call_function(function: Callable[..., int], argv: list[str], prog: str, exit_on_error: bool = True) -> int:
    """Parse `argv` against `function`'s signature (see `dispatch` for `exit_on_error`) and call it; returns its exit
    code. Required parameters are positional, keyword-only ones (after `*`) required options."""
    config = function_parser(function, prog, exit_on_error).parse_args(argv)
    parameters = signature(function).parameters.values()
    values = [v for p in parameters if p.kind is p.VAR_POSITIONAL for v in config[p.name]]  # `*paths`: zero or more
    named = {p.name: config[p.name] for p in parameters if p.kind is not p.VAR_POSITIONAL}
    return function(*values, **named)


def function_parser(function: Callable, prog: str, exit_on_error: bool = True) -> ArgumentParser:
    """A parser for `function`'s typed, documented signature, parameters without defaults positional. A list
    parameter takes one or more values (`--formats pt2 onnx`, `compare RUN RUN`), like argparse's nargs="+"."""
    description = parse_docstring(function.__doc__ or "").short_description
    parser = ArgumentParser(prog=prog, description=description, exit_on_error=exit_on_error)
    hints = get_type_hints(function)
    lists = {name: item for name, hint in hints.items() if (item := list_item(hint)) is not None}
    parameters = signature(function).parameters
    options = {name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    variadic = {name: hints[name] for name, p in parameters.items() if p.kind is p.VAR_POSITIONAL}
    parser.add_function_arguments(function, as_positional=True, skip=set(lists) | options | set(variadic))
    docs = {param.arg_name: param.description for param in parse_docstring(function.__doc__ or "").params}
    for name, parameter in parameters.items():
        if name in options:  # keyword-only and required: a required option (`style add NAME --ckpt FILE`)
            parser.add_argument(f"--{name}", type=hints[name], required=True, help=f"{docs.get(name)} (required)")
        elif name in variadic:  # `*paths: Path`: zero or more positional values
            parser.add_argument(name, type=variadic[name], nargs="*", default=[], help=docs.get(name))
        elif name in lists:
            required = parameter.default is parameter.empty
            default = {} if required else {"default": parameter.default}
            flag = name if required else f"--{name}"
            parser.add_argument(flag, type=lists[name], nargs="+", help=docs.get(name), **default)
    return parser


def list_item(hint) -> type | None:
    """`X` for a `list[X]` or `list[X] | None` hint, else None."""
    if get_origin(hint) in (Union, UnionType):
        hints = [h for h in get_args(hint) if h is not NoneType]
        hint = hints[0] if len(hints) == 1 else None
    return get_args(hint)[0] if get_origin(hint) is list else None
