"""`compare`'s tables: which way each metric improves, and the image metrics it compares by default."""

from pathlib import Path

import pytest

from lit_gan.sweep.compare import DEFAULT_METRICS, Run, goal, table


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("val/fid", "minimize"),
        ("val/kid_mean", "minimize"),
        ("val/lpips", "minimize"),
        ("val/lpips_AtoB", "minimize"),
        ("val/ssim", "maximize"),
        ("val/ssim_BtoA", "maximize"),
        ("test/psnr", "maximize"),
        ("val/is_mean", "maximize"),
        ("val/is_std", "minimize"),
        ("train/G", "minimize"),
    ],
)
def test_higher_is_better_for_ssim_psnr_and_the_inception_score_only(metric, expected):
    assert goal(metric) == expected


def test_the_table_takes_the_best_of_each_metric_in_its_own_direction():
    history = [
        {"trainer/global_step": 2, "val/fid": 30.0, "val/ssim": 0.5, "val/psnr": 18.0, "val/lpips": 0.4},
        {"trainer/global_step": 4, "val/fid": 20.0, "val/ssim": 0.7, "val/psnr": 21.0, "val/lpips": 0.3},
        {"trainer/global_step": 6, "val/fid": 25.0, "val/ssim": 0.6, "val/psnr": 19.0, "val/lpips": 0.35},
    ]
    (row,) = table([Run("r1", Path("r1"), {}, history)], ["val/fid", "val/ssim", "val/psnr", "val/lpips"])
    assert row == {
        "run": "r1",
        **{"best val/fid": 20.0, "final val/fid": 25.0, "best val/ssim": 0.7, "final val/ssim": 0.6},
        **{"best val/psnr": 21.0, "final val/psnr": 19.0, "best val/lpips": 0.3, "final val/lpips": 0.35},
    }


def test_ssim_psnr_and_lpips_are_compared_by_default():
    assert DEFAULT_METRICS == ["val/fid", "val/kid_mean", "val/ssim", "val/psnr", "val/lpips"]
