"""Weights & Biases logging that works without an account or a network: offline automatically."""

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger as _WandbLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from lit_gan.compat import forget_wandb_run, set_wandb_run_id, started_wandb_run, wandb_init_settings


def wandb_credentials_available() -> bool:
    """Whether W&B has an API key: `WANDB_API_KEY`, or a netrc entry for its host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    netrc_path = os.environ.get("NETRC", Path.home() / ".netrc")
    try:
        return bool(netrc.netrc(netrc_path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


class WandbLogger(_WandbLogger):
    """Lightning's `WandbLogger`, online when logged in and offline otherwise, never prompting.

    With `offline` unset, the mode comes from `WANDB_MODE` when set, else online exactly when W&B credentials
    exist. An offline run prints, when it ends, one line naming its folder and the `wandb sync` command that
    uploads it.

    Args:
        project: W&B project; also the name of the folder that holds the run folders under `save_dir`.
        save_dir: folder for W&B files (`<save_dir>/wandb/`) and run folders (`<save_dir>/<project>/<run id>/`).
        name: display name of the run.
        offline: force offline (True) or online (False) logging; None decides automatically.
        group: W&B group (sweeps group their trials by it).
        tags: W&B tags.
        log_model: upload checkpoints as W&B artifacts.
    """

    def __init__(
        self,
        project: str = "lit_gan",
        save_dir: str = "runs",
        name: str | None = None,
        offline: bool | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        log_model: bool = False,
        **kwargs,
    ) -> None:
        if offline is None:
            mode = os.environ.get("WANDB_MODE")
            offline = mode in ("offline", "dryrun", "disabled") if mode else not wandb_credentials_available()
        super().__init__(
            project=project,
            # Absolute: W&B's service process may have been started from another working directory.
            save_dir=os.path.abspath(save_dir),
            name=name,
            offline=offline,
            group=group,
            tags=tags,
            log_model=log_model,
            **kwargs,
        )
        self.run_name = name  # the display name it was given (Lightning's `name` is the project)
        self._offline_mode = offline
        self._logged_through: dict[str, int] = {}  # of a resumed run: the last step each key was logged at
        settings = wandb_init_settings(self)
        if settings.get("anonymous") is None:  # W&B warns about the setting even when it is None
            settings.pop("anonymous", None)

    def continue_run(self, run_id: str, logged_through: Mapping[str, int] | None = None) -> None:
        """Log into the existing run `run_id` instead of a new one (resuming); call it before the run starts.

        Args:
            run_id: the W&B run id.
            logged_through: the last step (`trainer/global_step`) the run already logged each key at. A run resumed
                from a checkpoint trains the steps between the checkpoint and the interruption again, and computes
                them exactly as before: those values are not logged a second time, so the run's history holds every
                step once (`log_metrics`).
        """
        run = started_wandb_run(self)
        if run is not None:
            raise RuntimeError(f"the W&B run {run.id} has already started; cannot switch to {run_id}")
        set_wandb_run_id(self, run_id)
        wandb_init_settings(self)["resume"] = "allow"
        self._logged_through = dict(logged_through or {})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Lightning's `log_metrics` (sample grids and tables go through it too), leaving out the keys a resumed run
        already logged at this step or later (see `continue_run`)."""
        if self._logged_through and step is not None:
            metrics = {key: value for key, value in metrics.items() if step > self._logged_through.get(key, -1)}
            if not metrics:
                return
        super().log_metrics(metrics, step)

    def finalize(self, status: str) -> None:
        super().finalize(status)
        run = started_wandb_run(self)
        if run is None or rank_zero_only.rank != 0:
            return
        run_folder = Path(os.path.relpath(Path(run.dir).parent))
        # Finish the W&B run so that the next fit/validate in this process gets a run of its own (or resumes this
        # one by id) instead of silently reusing it.
        run.finish(exit_code=0 if status == "success" else 1)
        forget_wandb_run(self)
        if self._offline_mode:
            rank_zero_info(
                f"W&B: logged offline (not logged in) to {run_folder}; upload it with: wandb sync {run_folder}"
            )
