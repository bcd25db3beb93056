"""Sweep files in W&B's format (`sweeps/*.yaml`), checked before any trial starts.

A sweep file is what `wandb sweep` takes: `method` (grid, random, bayes), `metric` (e.g. val/fid to minimize),
`parameters` keyed by dotted CLI keys (`model.lr`, `data.batch_size`), optionally `early_terminate`, and a
`command` that runs `python -m lit_gan fit --config <config> ${args}`. `load_sweep` checks it with W&B's own
schema (`sweeps.schema_violations_from_proposed_config`), requires the metric, and parses the command with every
parameter's values through lit_gan's CLI, so that an unknown key or a bad value fails at once, naming it. The CLI's
parser is given by the caller (`check_arguments`; `lit_gan.lightning_cli.rejected_arguments`): the command line
imports the sweep code, never the other way round.
"""

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import yaml

ArgumentCheck = Callable[[list[str]], "str | None"]
"""Why the command line rejects a command's arguments (one line), or None when it parses them."""
PLACEHOLDERS = ("${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}", "${args_json}")


class SweepConfigError(ValueError):
    """A sweep file that W&B or lit_gan's CLI would reject; the message names the file and what to fix."""


def load_sweep(path: str | Path, root: str | Path | None = None, *, check_arguments: ArgumentCheck) -> dict:
    """Read and check the sweep file `path`.

    Args:
        path: the sweep YAML.
        root: folder the command's relative paths (e.g. `configs/quickstart.yaml`) are relative to; default the
            current folder, as `wandb agent` runs the command there.
        check_arguments: parses a trial's command line without running it (`lightning_cli.rejected_arguments`).

    Returns:
        The sweep config (a dict in W&B's format).

    Raises:
        SweepConfigError: naming the file and the problem (YAML, W&B schema, metric, command, parameter key/value).
    """
    sweeps = engine()
    path = Path(path)
    if not path.is_file():
        raise SweepConfigError(f"sweep file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise SweepConfigError(f"{path}: a sweep file is a mapping with method, metric, parameters and command")
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise SweepConfigError(f"{path}: not a valid W&B sweep: " + "; ".join(violations))
    metric = config.get("metric") or {}
    if not metric.get("name"):
        raise SweepConfigError(f"{path}: needs a metric to optimise, e.g. metric: {{name: val/fid, goal: minimize}}")
    check_command(path, config, Path(root) if root is not None else Path.cwd(), check_arguments)
    return config


def engine():
    """W&B's sweep engine (`wandb[sweeps]`), imported without its pydantic-v2 deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Valid config keys have changed in V2", UserWarning)
        import sweeps
    return sweeps


def cli_arguments(config: dict) -> list[str]:
    """The command's arguments after `python -m lit_gan`, placeholders left out, e.g. [fit, --config, X]."""
    command = [str(token) for token in config.get("command") or []]
    if "lit_gan" in command:
        command = command[command.index("lit_gan") + 1 :]
    return [token for token in command if token not in PLACEHOLDERS]


def check_command(path: Path, config: dict, root: Path, check_arguments: ArgumentCheck) -> None:
    """Parse the command with every parameter's values through lit_gan's CLI (without running anything)."""
    command = [str(token) for token in config.get("command") or []]
    if "lit_gan" not in command or "${args}" not in command:
        raise SweepConfigError(
            f"{path}: command must run `python -m lit_gan fit --config <config> ${{args}}`, got {command}"
        )
    args = cli_arguments(config)
    if "--config" in args:
        i = args.index("--config") + 1
        config_file = Path(args[i]) if Path(args[i]).is_absolute() else root / args[i]
        if not config_file.is_file():
            raise SweepConfigError(f"{path}: the command's --config {args[i]} does not exist (looked in {root})")
        args[i] = str(config_file)
    for values in parameter_samples(config["parameters"]):
        trial = [*args, *(f"--{key}={value}" for key, value in values.items())]
        reason = check_arguments(trial)
        if reason:
            raise SweepConfigError(f"{path}: lit_gan's CLI rejects {' '.join(trial)}: {reason}")


def parameter_samples(parameters: dict) -> list[dict]:
    """Rows of parameter values that together cover every listed value and each range's ends."""
    columns = {key: _values(spec) for key, spec in parameters.items()}
    rows = max(len(values) for values in columns.values())
    return [{key: values[i % len(values)] for key, values in columns.items()} for i in range(rows)]


def _values(spec: dict) -> list:
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    low, high = spec.get("min"), spec.get("max")
    if spec.get("distribution") in ("log_uniform", "q_log_uniform"):  # bounds are exponents of e
        low, high = math.exp(low), math.exp(high)
    if low is not None and high is not None:
        return [low, high]
    return [spec.get("mu", 0.0)]  # normal distributions: their mean
