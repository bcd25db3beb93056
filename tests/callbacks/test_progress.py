"""The progress bar of `python -m lit_gan`: Lightning's bar, redrawn by time instead of at every training step."""

import pytest
from pytorch_lightning.callbacks import TQDMProgressBar

from lit_gan.callbacks import TimedProgressBar
from lit_gan.cli import main
from tests.helpers import fit, tiny_args

FIVE_STEPS = ["--trainer.max_steps=5", "--data.synthetic.train_size=5", "--metrics.enabled=false"]


def draws(monkeypatch, refresh_seconds: float) -> list[int]:
    """The training batches (1-based) after which the bar was redrawn in a 5-step epoch of the tiny CycleGAN."""
    drawn: list[int] = []
    redraw = TQDMProgressBar.on_train_batch_end

    def counted(self, trainer, pl_module, outputs, batch, batch_idx):
        drawn.append(batch_idx + 1)
        redraw(self, trainer, pl_module, outputs, batch, batch_idx)

    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end", counted)
    monkeypatch.setattr(TimedProgressBar.__init__, "__defaults__", (refresh_seconds, False))
    cli = fit(tiny_args(*FIVE_STEPS, "--trainer.enable_progress_bar=true"))
    assert type(cli.trainer.progress_bar_callback) is TimedProgressBar
    assert cli.trainer.progress_bar_callback.train_progress_bar.n == 5  # the bar ends at the epoch's last batch
    return drawn


def test_the_bar_is_redrawn_at_most_every_refresh_seconds_and_at_the_epochs_last_batch(monkeypatch):
    assert draws(monkeypatch, refresh_seconds=3600) == [1, 5]  # the first batch, then only the last


def test_without_a_minimum_time_every_batch_is_drawn(monkeypatch):
    assert draws(monkeypatch, refresh_seconds=0) == [1, 2, 3, 4, 5]


def test_a_progress_bar_given_in_the_config_is_kept():
    given = '{"class_path": "pytorch_lightning.callbacks.TQDMProgressBar", "init_args": {"refresh_rate": 5}}'
    cli = main(tiny_args("--trainer.enable_progress_bar=true", f"--trainer.callbacks+={given}"), run=False)
    bar = cli.trainer.progress_bar_callback
    assert type(bar) is TQDMProgressBar and bar.refresh_rate == 5


def test_lightnings_rich_default_is_replaced_too_but_a_rich_bar_given_in_the_config_is_kept(monkeypatch):
    pytest.importorskip("rich")  # Lightning's default bar where rich is installed (Gradio's dependencies install it)
    from pytorch_lightning.callbacks import RichProgressBar

    cli = main(tiny_args("--trainer.enable_progress_bar=true"), run=False)
    assert type(cli.trainer.progress_bar_callback) is TimedProgressBar
    given = '{"class_path": "pytorch_lightning.callbacks.RichProgressBar"}'
    cli = main(tiny_args("--trainer.enable_progress_bar=true", f"--trainer.callbacks+={given}"), run=False)
    assert type(cli.trainer.progress_bar_callback) is RichProgressBar


def test_no_bar_when_disabled():
    cli = main(tiny_args("--trainer.enable_progress_bar=false"), run=False)
    assert cli.trainer.progress_bar_callback is None


def test_refresh_seconds_must_not_be_negative():
    with pytest.raises(ValueError, match="refresh_seconds must be >= 0"):
        TimedProgressBar(refresh_seconds=-1)
