"""Which way each logged metric improves, read from its key (no torch: `compare` and the W&B logger share it)."""

from typing import Literal

HIGHER_IS_BETTER = ("ssim", "psnr", "is_mean", "lpips_diversity")  # lit_gan.metrics' result keys where higher is better
EVALUATION_PREFIXES = ("val/", "test/")  # keys computed at evaluations: their W&B summaries keep the best value


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
