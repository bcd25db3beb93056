"""`python -m lit_gan sweep FILE [--count N] [--parallel K]`: run a W&B-format sweep offline."""

import argparse
import signal
import sys

from lit_gan.sweep.config import SweepConfigError
from lit_gan.sweep.runner import SweepRunner


def sweep_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_gan sweep", description=__doc__)
    parser.add_argument("file", help="sweep YAML in W&B's format, e.g. sweeps/quickstart_grid.yaml")
    parser.add_argument("--count", type=int, help="trials in all (default: the grid, or the file's run_cap)")
    parser.add_argument("--parallel", type=int, default=1, help="trials at once, as separate processes")
    parser.add_argument("--out", help="the sweep's folder (default runs/sweeps/<name>)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops the sweep, even if started with & or nohup
    try:
        runner = SweepRunner(args.file, args.count, args.parallel, args.out)
    except (SweepConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        runner.run()
    except KeyboardInterrupt:
        print(f"sweep {runner.name}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"sweep {runner.name}: table in {runner.out / 'trials.csv'} and trials.json")
    return 0
