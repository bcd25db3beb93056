"""Time to quality: KID and FID of unpaired models against training time, on summer2winter_yosemite at 64 px.

Every run (a model, a variant, a data setting: `RUNS` below) trains in its own process for the same wall-clock
training budget and is evaluated at `--points` equally spaced times, the last at the end of the budget. The clock
counts training only: it is paused while the model is evaluated. An evaluation translates the first
`--eval-images` testA (summer) images with the model's inference generator (AtoB) and compares them with as many
testB (winter) images by KID and FID, computed by lit_gan's metrics code with its genuine TF-Inception features
(the real testB features are encoded once and cached on disk for every later run). Recorded per run: iterations,
iterations per second of training time, peak resident memory (of training alone, before the first evaluation, and
of the whole process), and KID mean/std and FID at each time point; the final AtoB sample grid (real | translated)
goes to `benchmarks/results/time_to_quality/<run>.png`.

    python benchmarks/time_to_quality.py                                   # every run, about 40 min on 2 cores
    python benchmarks/time_to_quality.py --only cyclegan cut               # some runs ('cyclegan*': globs)
    python benchmarks/time_to_quality.py --only cyclegan --budget 30 --points 2 --eval-images 10   # smoke test
    python benchmarks/time_to_quality.py --report-only                     # the table and plot from the JSON

Outputs: benchmarks/results/time_to_quality.json, .md (the table, also printed) and .png (KID and FID against
training seconds, one panel per data setting).
"""

import argparse
import fnmatch
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NAME = "time_to_quality"

# -- what runs: the one table to edit ----------------------------------------------------------------------------------

# trainA/trainB/testA/testB (--dataset): ../shared beside the repository
DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "summer2winter_yosemite"
SIZE = 64  # crop size in px; images are resized to LOAD_SIZE first (the reference's 286 -> 256, scaled)
LOAD_SIZE = 72
NETWORKS = {"ngf": 32, "n_blocks": 6, "ndf": 32, "n_layers": 3}  # the same small networks for every model
COMMON_ARGS = [  # every run: data, no validation/logger/progress bar, constant learning rate
    "--seed_everything", "0",
    "--data.load_size", str(LOAD_SIZE), "--data.crop_size", str(SIZE), "--data.batch_size", "1",
    "--data.num_workers", "0", "--data.flip", "true",
    "--trainer.max_epochs", "-1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false", "--trainer.limit_val_batches", "0",
    "--trainer.num_sanity_val_steps", "0", "--trainer.log_every_n_steps", "50",
]  # fmt: skip
MODEL_COMMON = {"lr_policy": {"policy": "constant"}}  # every model's init_args: no decay within the budget


def generator(**extra) -> dict:
    init = {"ngf": NETWORKS["ngf"], "n_blocks": NETWORKS["n_blocks"], **extra}
    return {"class_path": "lit_gan.networks.ResnetGenerator", "init_args": init}


def discriminator(**extra) -> dict:
    init = {"ndf": NETWORKS["ndf"], "n_layers": NETWORKS["n_layers"], **extra}
    return {"class_path": "lit_gan.networks.PatchGANDiscriminator", "init_args": init}


def cut(**extra) -> dict:
    """CUT (Park et al. 2020) with the reference's defaults; FastCUT and the single-image setting override some."""
    init = {
        "generator": generator(antialias=True),
        "discriminator": discriminator(antialias=True),
        "lambda_NCE": 1.0,
        "nce_idt": True,
        "flip_equivariance": False,
        "negatives_from_minibatch": False,
    }
    return {"class_path": "lit_gan.models.CUT", "init_args": {**init, **extra}}


# Model configs (`--model`). CUT, FastCUT, DiffAugment and data.mode single_image are planned names (other branches);
# their exact syntax is fixed here, in MODELS, VARIANTS and DATA, and nowhere else.
MODELS: dict[str, dict] = {
    "cyclegan": {
        "class_path": "lit_gan.models.CycleGAN",
        "init_args": {"generator": generator(), "discriminator": discriminator()},
    },
    "cut": cut(),
    "fastcut": cut(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True),
    "cut_single_image": cut(negatives_from_minibatch=True),  # the reference's single-image setting
}
AUGMENT = {"class_path": "lit_gan.augment.DiffAugment", "init_args": {"policy": "color,translation,cutout"}}
VARIANTS: dict[str, list[str]] = {  # run-name suffix -> extra CLI arguments
    "": [],
    "_diffaug": ["--model.init_args.augment", json.dumps(AUGMENT)],
}
DATA: dict[str, dict] = {  # run-name suffix -> how many training images per domain (None: all) and CLI arguments
    "": {"label": "all 250 winter images", "trainA": None, "trainB": None, "args": []},
    "_25b": {"label": "25 winter images", "trainA": None, "trainB": 25, "args": []},
    "_single": {"label": "one image per domain", "trainA": 1, "trainB": 1, "args": ["--data.mode", "single_image"]},
}
RUNS: dict[str, tuple[str, str, str]] = {  # run name -> (MODELS key, VARIANTS key, DATA key)
    **{f"{m}{v}{d}": (m, v, d) for d in ("", "_25b") for m in ("cyclegan", "cut", "fastcut") for v in VARIANTS},
    "cut_single": ("cut_single_image", "", "_single"),
}
BASELINE = "cyclegan"  # "time to reach its final KID" is measured against this model's runs

DEFAULT_BUDGET_S = 100.0  # training seconds per run: 13 runs x (100 s + ~75 s of start-up and evaluations) ~ 38 min
DEFAULT_POINTS = 4
DEFAULT_EVAL_IMAGES = 50  # ~15 s per evaluation at ~3.5 images/s (Inception at 299 px on 2 cores)
GRID_IMAGES = 6


def cli_args(run: str, root: Path) -> list[str]:
    """The `lit_gan.cli.main` arguments of `run` on the dataset folder `root`."""
    model, variant, data = RUNS[run]
    config = {**MODELS[model], "init_args": {**MODEL_COMMON, **MODELS[model]["init_args"]}}
    return [*COMMON_ARGS, "--model", json.dumps(config), *VARIANTS[variant], "--data.root", str(root),
            *DATA[data]["args"]]  # fmt: skip


# -- one run, in a child process ---------------------------------------------------------------------------------------


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(spec_file: Path) -> None:
    """Train one run for the budget, evaluating at the time points; write its record to spec["out"]."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from torchvision.utils import save_image

    from lit_gan.callbacks import SampleGridCallback
    from lit_gan.callbacks.metrics import MetricsCallback
    from lit_gan.cli import main as lit_gan_main
    from lit_gan.metric_keys import FID, KID_MEAN, KID_STD

    spec = json.loads(spec_file.read_text())
    cli = lit_gan_main(spec["args"], run=False)
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    # Training alone: no checkpoints, sample grids or metrics of the CLI's own (this script evaluates instead).
    trainer.callbacks[:] = [
        c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint | SampleGridCallback | MetricsCallback)
    ]
    metrics = MetricsCallback(
        max_images=spec["eval_images"],
        directions=["AtoB"],
        inception_score=False,
        ssim=False,
        batch_size=10,
        kid_subset_size=spec["kid_subset_size"],
    )
    budget, points = spec["budget"], spec["points"]
    times = [budget * (k + 1) / points for k in range(points)]
    record: dict = {"points": [], "parameters": sum(p.numel() for p in model.parameters())}

    def evaluate(elapsed: float, iterations: int) -> None:
        if not record["points"]:  # training's peak before the Inception network and its activations exist
            record["peak_rss_train_mib"] = max_rss_mib()
        metrics.prepare(model)
        results = metrics.evaluate(trainer, model, "val")
        record["points"].append({
            "train_s": elapsed, "iterations": iterations, "kid_mean": results[f"val/{KID_MEAN}"],
            "kid_std": results[f"val/{KID_STD}"], "fid": results[f"val/{FID}"],
            "eval_s": results["perf/metrics_seconds"],
        })  # fmt: skip
        print(f"{spec['name']}: {record['points'][-1]}", flush=True)

    @torch.no_grad()
    def save_grid() -> None:
        dataset, _ = datamodule.held_out_images("A", GRID_IMAGES)
        real = torch.stack([dataset[i]["A"] for i in range(len(dataset))]).to(model.device)  # (N, 3, H, W)
        was_training = model.training
        model.eval()
        fake = model.generate("AtoB", real)
        model.train(was_training)
        pairs = torch.stack([real, fake], dim=1).flatten(0, 1)  # (2N, 3, H, W): real, translated, real, ...
        Path(spec["grid"]).parent.mkdir(parents=True, exist_ok=True)
        save_image((pairs.cpu() + 1) / 2, spec["grid"], nrow=2, padding=2)

    class Clock(pl.Callback):
        """Stops training at the budget; evaluates at each time point with the clock paused."""

        def on_train_start(self, trainer, pl_module) -> None:
            self.iterations, self.paused, self.paused_cpu = 0, 0.0, 0.0
            self.start, self.start_cpu = time.perf_counter(), cpu_seconds()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.iterations += 1
            now, now_cpu = time.perf_counter(), cpu_seconds()
            if self.iterations == spec["warmup"]:  # one-off costs (kernels, lazily built layers) are not timed
                record["warmup_s"] = now - self.start
                self.start, self.start_cpu = now, now_cpu
                return
            elapsed = now - self.start - self.paused
            if elapsed < times[len(record["points"])]:
                return
            evaluate(elapsed, self.iterations)
            if len(record["points"]) == len(times):
                save_grid()
                cpu = now_cpu - self.start_cpu - self.paused_cpu  # how many cores training had: the machine's load
                record.update(iterations=self.iterations, train_s=elapsed, train_cpu_s=cpu)
                trainer.should_stop = True
            self.paused += time.perf_counter() - now
            self.paused_cpu += cpu_seconds() - now_cpu

    trainer.callbacks.append(Clock())
    trainer.fit(model, datamodule=datamodule)
    record["its_per_s"] = record["iterations"] / record["train_s"]
    record["peak_rss_child_mib"] = max_rss_mib()
    Path(spec["out"]).write_text(json.dumps(record, indent=2) + "\n")


def run_one(name: str, root: Path, args: argparse.Namespace, work: Path) -> dict:
    """Run `name` in a child process; its record plus wall time and the process's peak RSS (or the error)."""
    work.mkdir(parents=True)
    grid = args.out_dir / NAME / f"{name}.png"
    spec = {"name": name, "args": cli_args(name, root), "budget": args.budget, "points": args.points,
            "warmup": args.warmup, "eval_images": args.eval_images, "kid_subset_size": kid_subset_size(args),
            "grid": str(grid), "out": str(work / "record.json")}  # fmt: skip
    (work / "spec.json").write_text(json.dumps(spec, indent=2))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(work),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    log = work / "output.log"
    start = time.perf_counter()
    with log.open("w") as out:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(work / "spec.json")]
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
    base = {"name": name, "command_args": spec["args"], "wall_s": time.perf_counter() - start,
            "peak_rss_mib": usage.ru_maxrss / 1024}  # fmt: skip
    if os.waitstatus_to_exitcode(status) != 0 or not Path(spec["out"]).is_file():
        lines = log.read_text().splitlines() or ["no output"]
        first = max((i for i, line in enumerate(lines) if "Error" in line or line.startswith("error")), default=-1)
        base["error"] = " ".join(line.strip() for line in lines[first:][:8])[:500]
        print(f"{name}: FAILED ({base['error']})\n" + "\n".join(lines[-15:]), flush=True)
        return base
    grid_name = str(grid.relative_to(ROOT)) if grid.is_relative_to(ROOT) else str(grid)
    return base | json.loads(Path(spec["out"]).read_text()) | {"grid": grid_name}


def kid_subset_size(args: argparse.Namespace) -> int:
    """KID's subset size: half the evaluation images by default, so that its subsets differ and its std means
    something (subsets of all the images would all be the same set)."""
    return args.kid_subset_size or max(2, args.eval_images // 2)


def make_dataset(data: str, root: Path, work: Path) -> Path:
    """The dataset folder of DATA[data]: `root` itself, or a folder of symlinks to the first images of trainA/trainB
    (sorted) and to all of testA/testB."""
    keep = {domain: DATA[data][f"train{domain}"] for domain in "AB"}
    if all(n is None for n in keep.values()):
        return root
    from lit_gan.data.images import list_images

    folder = work / f"dataset{data}"
    for domain, n in keep.items():
        (folder / f"train{domain}").mkdir(parents=True)
        for path in list_images(root / f"train{domain}")[:n]:
            (folder / f"train{domain}" / path.name).symlink_to(path.resolve())
        (folder / f"test{domain}").symlink_to((root / f"test{domain}").resolve())
    return folder


def machine_info() -> dict:
    import pytorch_lightning as pl
    import torch
    from train_speed import cpu_model  # this folder

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "load_average": os.getloadavg(),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
        f"pytorch-lightning {pl.__version__}",
    }


def select(patterns: list[str] | None) -> list[str]:
    if not patterns:
        return list(RUNS)
    unknown = [p for p in patterns if not fnmatch.filter(RUNS, p)]
    if unknown:
        raise SystemExit(f"--only: {unknown} match no run; runs: {', '.join(RUNS)}")
    return [name for name in RUNS if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def run_all(args: argparse.Namespace, json_path: Path) -> dict:
    """Every selected run, one after the other; the report is rewritten after each (a crash keeps what ran)."""
    names = select(args.only)
    report = {
        "options": {"budget_s": args.budget, "points": args.points, "warmup": args.warmup,
                    "eval_images": args.eval_images, "kid_subset_size": kid_subset_size(args),
                    "dataset": str(args.dataset), "size": SIZE, "load_size": LOAD_SIZE, "networks": NETWORKS},
        "wall_s": 0.0,
        "runs": {},
        "machine": machine_info(),
    }  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="time_to_quality_") as tmp:
        datasets = {data: make_dataset(data, args.dataset, Path(tmp)) for data in {RUNS[n][2] for n in names}}
        for i, name in enumerate(names):
            print(f"\n## {name} ({i + 1}/{len(names)}): {RUNS[name]}", flush=True)
            report["runs"][name] = run = run_one(name, datasets[RUNS[name][2]], args, Path(tmp) / name)
            print(f"({name}: {run['wall_s']:.0f} s)", flush=True)
            report["wall_s"] = time.perf_counter() - started
            report["machine"]["load_average"] = os.getloadavg()
            json_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


# -- the report --------------------------------------------------------------------------------------------------------


def reach_time(points: list[dict], target: float) -> tuple[float, bool] | None:
    """When the KID curve first reaches `target` (linear interpolation between evaluations), and whether that is
    only an upper bound (reached at the first evaluation already); None if it never does."""
    previous = None
    for p in points:
        if p["kid_mean"] <= target:
            if previous is None:
                return p["train_s"], True
            t0, k0 = previous["train_s"], previous["kid_mean"]
            return t0 + (k0 - target) / (k0 - p["kid_mean"]) * (p["train_s"] - t0), False
        previous = p
    return None


def reach_lines(runs: dict) -> list[str]:
    """For each run with a baseline run of the same variant and data: time to reach the baseline's final KID."""
    lines = []
    for name, r in runs.items():
        model, variant, data = RUNS.get(name, (None, None, None))
        base = runs.get(f"{BASELINE}{variant}{data}")
        if model is None or model == BASELINE or base is None or "error" in r or "error" in base:
            continue
        target, base_t = base["points"][-1]["kid_mean"], base["points"][-1]["train_s"]
        found = reach_time(r["points"], target)
        head = f"- {name} to reach {base['name']}'s final KID ({target:.4f} after {base_t:.0f} s): "
        if found is None:
            lines.append(head + f"not reached in {r['train_s']:.0f} s")
        else:
            t, bound = found
            lines.append(head + f"{'<= ' * bound}{t:.0f} s, **{'<= ' * bound}{t / base_t:.2f}x** CycleGAN's time")
    return lines


def markdown(report: dict) -> str:
    o, runs = report["options"], report["runs"]
    n = o["networks"]
    nominal = [o["budget_s"] * (k + 1) / o["points"] for k in range(o["points"])]
    lines = [
        "# Time to quality",
        "",
        f"summer -> winter (AtoB) on {Path(o['dataset']).name} at {o['size']} px (resized to {o['load_size']}, "
        f"cropped), CPU. Every run: {o['budget_s']:.0f} s of training (evaluations and the first "
        f"{o.get('warmup', 0)} iteration(s) excluded), batch 1, constant "
        f"lr; networks ResNet G ngf {n['ngf']}, {n['n_blocks']} blocks; PatchGAN D ndf {n['ndf']}, {n['n_layers']} "
        f"layers. KID (mean ± std over 100 subsets of {o['kid_subset_size']}) and FID of the first {o['eval_images']} "
        f"testA translations against {o['eval_images']} testB images (TF-Inception features). Few images bias FID "
        'upwards: compare runs with each other, not with published FIDs. "cores used": CPU seconds per training '
        "second, the process's share of the machine (lower than the torch threads when other work shares the cores, "
        "which slows training and changes every number here).",
        "",
        f"Machine: {report['machine']['cpu']}, {report['machine']['cpu_count']} cores, "
        f"{report['machine']['torch_threads']} torch threads, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in report['machine']['load_average'])}; {report['machine']['versions']}. "
        f"Whole benchmark: {report['wall_s'] / 60:.1f} min.",
        "",
        "| run | data | iterations | it/s | cores used | peak RSS, training (process) | "
        + " | ".join(f"KID / FID at {t:.0f} s" for t in nominal)
        + " | final KID | final FID |",
        "|---|---|---|---|---|---|" + "---|" * len(nominal) + "---|---|",
    ]
    for name, r in runs.items():
        data = DATA[RUNS[name][2]]["label"] if name in RUNS else "?"
        if "error" in r:
            lines.append(f"| {name} | {data} | failed: {r['error'][:160].replace('|', '/')} |")
            continue
        cells = [f"{p['kid_mean']:.4f} ± {p['kid_std']:.4f} / {p['fid']:.1f}" for p in r["points"]]
        cells += ["-"] * (len(nominal) - len(cells))
        final = r["points"][-1]
        lines.append(
            f"| {name} | {data} | {r['iterations']} | {r['its_per_s']:.2f} | {r['train_cpu_s'] / r['train_s']:.2f} | "
            f"{r['peak_rss_train_mib']:.0f} ({r['peak_rss_mib']:.0f}) MiB | {' | '.join(cells)} | "
            f"**{final['kid_mean']:.4f}** | **{final['fid']:.1f}** |"
        )
    reach = reach_lines(runs)
    lines += ["", "Time to reach CycleGAN's final KID (interpolated on the KID curve), same variant and data:", ""]
    lines += reach or ["- no run with a CycleGAN run of the same variant and data"]
    lines += ["", f"Sample grids (testA | translated), beside this file: {NAME}/<run>.png.", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {k: r for k, r in report["runs"].items() if "error" not in r and k in RUNS}
    settings = [d for d in DATA if any(RUNS[k][2] == d for k in runs)]
    if not settings:
        return
    colors = {model: f"C{i}" for i, model in enumerate(MODELS)}  # a model's colour in every panel; dashed: a variant
    fig, axes = plt.subplots(2, len(settings), figsize=(6 * len(settings), 8), squeeze=False)
    for col, data in enumerate(settings):
        for name, r in runs.items():
            model, variant, _ = RUNS[name]
            if RUNS[name][2] != data:
                continue
            t = [p["train_s"] for p in r["points"]]
            style = {"color": colors[model], "linestyle": "--" if variant else "-", "marker": "o", "label": name}
            kid = [p["kid_mean"] for p in r["points"]]
            axes[0, col].errorbar(t, kid, yerr=[p["kid_std"] for p in r["points"]], capsize=3, **style)
            axes[1, col].plot(t, [p["fid"] for p in r["points"]], **style)
        axes[0, col].set_title(DATA[data]["label"])
        for row, metric in enumerate(("KID", "FID")):
            axes[row, col].set_xlabel("training seconds (evaluations excluded)")
            axes[row, col].set_ylabel(f"{metric} (summer -> winter)")
            axes[row, col].grid(alpha=0.3)
            axes[row, col].legend(fontsize=8)
    o = report["options"]
    n = o["networks"]
    fig.suptitle(
        f"Time to quality at {o['size']} px, CPU: G ngf {n['ngf']} x {n['n_blocks']} blocks, D ndf {n['ndf']}; "
        f"{o['eval_images']} test images per evaluation"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict, out_dir: Path) -> None:
    text = markdown(report)
    (out_dir / f"{NAME}.md").write_text(text)
    plot(report, out_dir / f"{NAME}.png")
    print(text)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="RUN", help=f"runs or globs of RUNS: {', '.join(RUNS)}")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="training seconds per run")
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS, help="evaluations, equally spaced, the last at "
                        "the end of the budget")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="first iterations not timed (one-off set-up costs); "
                        "they still train the model and count as iterations")  # fmt: skip
    parser.add_argument("--eval-images", type=int, default=DEFAULT_EVAL_IMAGES, help="test images per evaluation")
    parser.add_argument("--kid-subset-size", type=int, help="KID's subset size (default: half of --eval-images)")
    parser.add_argument("--dataset", type=Path, default=DATASET, help="CycleGAN layout: trainA/trainB/testA/testB")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="render the table and plot from the JSON")
    args = parser.parse_args()
    if args.points < 1 or args.eval_images < 2 or args.budget <= 0 or args.warmup < 0:
        parser.error("need --points >= 1, --eval-images >= 2, --budget > 0 and --warmup >= 0")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / f"{NAME}.json"
    if args.report_only:
        report = json.loads(json_path.read_text())
    else:
        report = run_all(args, json_path)
    write_report(report, args.out_dir)


if __name__ == "__main__":
    main()
