"""The training order (`lit_gan.data.sampling`) as Lightning resumes it: the loader is declared resumable, so a
mid-epoch resume continues without Lightning's "not resumable" warning, and without any warnings filter."""

import warnings
from pathlib import Path

from lit_gan.data import StyleDataModule
from lit_gan.data.sampling import ResumableDataLoader
from tests.helpers import fit, tiny_args

EVERY_STEP = ["--checkpoint.every_n_train_steps=1", "--samples.every_n_steps=0", "--metrics.enabled=false"]


def test_only_the_training_loader_resumes_by_itself():
    dm = StyleDataModule(name="synthetic", load_size=36, crop_size=32, num_workers=0, synthetic={"train_size": 4})
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableDataLoader) and loader.state_dict() == {}
    assert not isinstance(dm.val_dataloader(), ResumableDataLoader)


def test_a_mid_epoch_resume_is_not_reported_as_unreliable():
    # 6 images per epoch, one per batch: stopping after step 2 is mid-epoch.
    run = Path(fit(tiny_args("--trainer.max_steps=2", *EVERY_STEP)).trainer.checkpoint_callback.dirpath)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = fit(tiny_args("--trainer.max_steps=3", *EVERY_STEP), ckpt_path=run / "last.ckpt")
    assert cli.trainer.global_step == 3
    assert not [w for w in caught if "ended before the epoch ended" in str(w.message)]
