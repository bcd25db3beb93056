"""`python -m lit_gan sweep FILE [--count N] [--parallel K] [--out DIR]`: run a W&B-format sweep offline."""

import signal
import sys
from pathlib import Path

from lit_gan.sweep.runner import SweepRunner


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
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops the sweep, even if started with & or nohup
    runner = SweepRunner(file, count, parallel, out)
    try:
        runner.run()
    except KeyboardInterrupt:
        print(f"sweep {runner.name}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"sweep {runner.name}: table in {runner.out / 'trials.csv'} and trials.json")
    return 0
