"""Every benchmark of this folder in one run, each writing its JSON into `--out-dir`.

- `train_speed.py`: training iterations/s of CycleGAN, pix2pix and DCGAN through lit_gan against plain PyTorch loops;
- `fid_eval.py`: FID/KID evaluation throughput against torch-fidelity;
- `quickstart.py`: wall time and peak memory of the quickstart.

    python benchmarks/run_all.py [--out-dir benchmarks/results] [--device cpu|cuda]
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE / "results", help="where the JSON files go")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="for train_speed.py")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    commands = {
        "train_speed": ["--device", args.device],
        "fid_eval": [],
        "quickstart": [],
    }
    for name, extra in commands.items():
        command = [sys.executable, str(HERE / f"{name}.py"), *extra, "--out", str(args.out_dir / f"{name}.json")]
        print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
