"""`python -m lit_gan sweep FILE [--count N] [--parallel K] [--out DIR]`: run a W&B-format sweep offline (the
command line's `sweep`, `lit_gan.cli.sweep_command`, calls `run_sweep` with its own argument parser)."""

import signal
import sys
from pathlib import Path

from lit_gan.sweep.config import ArgumentCheck
from lit_gan.sweep.runner import SweepRunner


def run_sweep(
    file: Path, count: int | None = None, parallel: int = 1, out: Path | None = None, *, check_arguments: ArgumentCheck
) -> int:
    """`python -m lit_gan sweep` (`lit_gan.cli.sweep_command`, whose docstring is its help): run the sweep `file`
    offline, `count` trials in all, `parallel` at once, into `out`; `check_arguments` parses a trial's command line
    without running it (`lightning_cli.rejected_arguments`). Returns 0, or 130 when interrupted (Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops the sweep, even if started with & or nohup
    runner = SweepRunner(file, count, parallel, out, check_arguments=check_arguments)
    try:
        runner.run()
    except KeyboardInterrupt:
        print(f"sweep {runner.name}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"sweep {runner.name}: table in {runner.out / 'trials.csv'} and trials.json")
    return 0
