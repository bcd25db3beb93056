"""The names lit_gan logs under, and which way each metric improves: one torch-free module that the metrics, the
callbacks, the W&B logger and the comparison tools (`compare`, `dashboard`, sweeps) all read.

A logged key is `<stage>/<name>[_<direction>]`: `val/fid`, `val/fid_AtoB`, `test/ssim`, `train/G_A`.
"""

from typing import Literal

# what lit_gan.metrics computes at an evaluation (the names after the stage prefix)
FID, KID_MEAN, KID_STD, IS_MEAN, IS_STD = "fid", "kid_mean", "kid_std", "is_mean", "is_std"
SSIM, PSNR, LPIPS = "ssim", "psnr", "lpips"
DIVERSITY = "lpips_diversity"  # LPIPS between translations of one image with two styles (higher: more diverse)
QUALITY = (FID, KID_MEAN, IS_MEAN, SSIM, PSNR, LPIPS)  # the quality metrics, in the order dashboards show them
SPREADS = (KID_STD, IS_STD)  # logged beside their means
HIGHER_IS_BETTER = (SSIM, PSNR, IS_MEAN, DIVERSITY)

# stages and other key prefixes
TRAIN, VAL, TEST = "train/", "val/", "test/"
EVALUATION_PREFIXES = (VAL, TEST)  # keys computed at evaluations: their W&B summaries keep the best value
SAMPLES = "samples/"  # sample grids: samples/<direction>
TRANSLATIONS = "translations/"  # W&B tables: translations/<direction>
LEARNING_RATES = "train/lr"  # train/lr_G, train/lr_D
PERF = "perf/"  # timings (perf/metrics_seconds)
BEST = "best/"  # end-of-run summary: best/<monitored key>, best/checkpoint

STEP_KEY = "trainer/global_step"  # Lightning's step axis of every logged key
VAL_FID, VAL_KID = VAL + FID, VAL + KID_MEAN
PRIMARY = VAL_FID  # what runs are ranked by and the best checkpoint is chosen by, by default


def goal(metric: str) -> Literal["maximize", "minimize"]:
    """How `metric` improves: "maximize" for SSIM, PSNR, the Inception Score and LPIPS diversity (also per direction, as
    val/ssim_AtoB), else "minimize" (FID, KID, LPIPS, held-out losses)."""
    name = metric.split("/")[-1]
    return "maximize" if any(name == key or name.startswith(f"{key}_") for key in HIGHER_IS_BETTER) else "minimize"


def best_summary(metric: str) -> Literal["max", "min"]:
    """W&B's summary aggregation that keeps `metric`'s best value: "max" or "min"."""
    return "max" if goal(metric) == "maximize" else "min"


def is_evaluation_metric(key: str) -> bool:
    """Whether `key` is a number computed at an evaluation (`val/...`, `test/...`)."""
    return key.startswith(EVALUATION_PREFIXES)
