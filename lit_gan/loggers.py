"""Weights & Biases logging that works without an account or a network: offline automatically; metrics defined
with their best value as summary; checkpoints as versioned model artifacts on request."""

import netrc
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger as _WandbLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from lit_gan.compat import forget_wandb_run, set_wandb_run_id, started_wandb_run, wandb_init_settings
from lit_gan.metric_keys import BEST, STEP_KEY, best_summary, is_evaluation_metric
from lit_gan.runs import checkpoint_summary


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

    Every evaluation metric (`val/...`, `test/...`) is defined in W&B, when first logged, with `trainer/global_step`
    as its step axis and its best value (the lowest FID/KID/LPIPS, the highest SSIM/PSNR/IS; `lit_gan.metric_keys`) and
    its last value as its summary: the runs table and sweep views show `val/fid.min` beside `val/fid.last`.

    Args:
        project: W&B project; also the name of the folder that holds the run folders under `save_dir`.
        save_dir: folder for W&B files (`<save_dir>/wandb/`) and run folders (`<save_dir>/<project>/<run id>/`).
        name: display name of the run.
        offline: force offline (True) or online (False) logging; None decides automatically.
        group: W&B group (sweeps group their trials by it).
        tags: W&B tags.
        log_model: log checkpoints as versions of the W&B model artifact `model-<run id>` when the run ends: "best"
            (or true) logs the best checkpoint (alias "best") and the last one (aliases "last" and "latest"), each with
            its step, epoch, monitored score and the evaluation metrics of its step as metadata. Offline, they are
            written into the run for `wandb sync` to upload.
    """

    def __init__(
        self,
        project: str = "lit_gan",
        save_dir: str = "runs",
        name: str | None = None,
        offline: bool | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        log_model: bool | Literal["best"] = False,
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
            log_model=False,  # Lightning's refuses offline runs; `log_checkpoints` logs them, offline too
            **kwargs,
        )
        self.model_checkpoints: Literal["best"] | None = "best" if log_model else None
        self.run_name = name  # the display name it was given (Lightning's `name` is the project)
        self._offline_mode = offline
        self._logged_through: dict[str, int] = {}  # of a resumed run: the last step each key was logged at
        self._defined: set[str] = set()  # evaluation metrics defined in the W&B run
        self._evaluations: dict[int, dict[str, float]] = {}  # step -> evaluation metrics logged at it
        self._saving_callbacks: dict[int, ModelCheckpoint] = {}
        settings = wandb_init_settings(self)
        if settings.get("anonymous") is None:  # W&B warns about the setting even when it is None
            settings.pop("anonymous", None)

    def continue_run(
        self,
        run_id: str,
        logged_through: Mapping[str, int] | None = None,
        earlier_rows: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Log into the existing run `run_id` instead of a new one (resuming); call it before the run starts.

        Args:
            run_id: the W&B run id.
            logged_through: the last step (`trainer/global_step`) the run already logged each key at. A run resumed
                from a checkpoint trains the steps between the checkpoint and the interruption again, and computes
                them exactly as before: those values are not logged a second time, so the run's history holds every
                step once (`log_metrics`).
            earlier_rows: the history rows the run logged before (`lit_gan.sweep.history.run_history`): their
                evaluation metrics count towards the best values in the run's summary (W&B's own summaries of a
                resumed run only see the values logged since the resume).
        """
        run = started_wandb_run(self)
        if run is not None:
            raise RuntimeError(f"the W&B run {run.id} has already started; cannot switch to {run_id}")
        set_wandb_run_id(self, run_id)
        wandb_init_settings(self)["resume"] = "allow"
        self._logged_through = dict(logged_through or {})
        for row in earlier_rows:
            if STEP_KEY in row:
                self._record_evaluation(row, int(row[STEP_KEY]))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Lightning's `log_metrics` (sample grids and tables go through it too), leaving out the keys a resumed run
        already logged at this step or later (see `continue_run`)."""
        if self._logged_through and step is not None:
            metrics = {key: value for key, value in metrics.items() if step > self._last_logged_step(key)}
            if not metrics:
                return
        self._define_evaluation_metrics(metrics)
        if step is not None:
            self._record_evaluation(metrics, step)
        super().log_metrics(metrics, step)

    def _last_logged_step(self, key: str) -> int:
        """The last step a resumed run logged `key` at before (-1 if never); an image or a table is in the history
        as flattened keys (`samples/AtoB._type`, `translations/AtoB.path`, ...)."""
        return self._logged_through.get(key, self._logged_through.get(f"{key}._type", -1))

    def _record_evaluation(self, metrics: Mapping[str, Any], step: int) -> None:
        numbers = {k: float(v) for k, v in metrics.items() if is_evaluation_metric(k) and _is_number(v)}
        if numbers:
            self._evaluations.setdefault(step, {}).update(numbers)

    def evaluation_summary(self) -> dict[str, dict[str, float]]:
        """{key: {"min" or "max": its best value, "last": its value at the last step}} of every evaluation metric
        logged by the run, resumed starts included (what its W&B summary holds)."""
        summary: dict[str, dict[str, float]] = {}
        for step in sorted(self._evaluations):
            for key, value in self._evaluations[step].items():
                best = best_summary(key)
                earlier = summary.get(key, {}).get(best, value)
                summary[key] = {best: min(earlier, value) if best == "min" else max(earlier, value), "last": value}
        return summary

    def _define_evaluation_metrics(self, metrics: Mapping[str, Any]) -> None:
        """`define_metric` each evaluation metric not defined yet: `trainer/global_step` as its step axis, its best
        and last values as summary."""
        for key in metrics:
            if is_evaluation_metric(key) and key not in self._defined and _is_number(metrics[key]):
                self.experiment.define_metric(key, step_metric=STEP_KEY, summary=f"{best_summary(key)},last")
                self._defined.add(key)

    @property
    def experiment(self) -> Any:
        """The W&B run, started on first use. Its folder is made first: W&B looks for the git repository (the run's
        commit) from it and warns "git root ... does not exist" when it is not there yet."""
        if rank_zero_only.rank == 0 and started_wandb_run(self) is None:
            os.makedirs(self.save_dir, exist_ok=True)
        return super().experiment

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        # which checkpoints are the best and last is known when the run ends (`finalize`)
        self._saving_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def best_checkpoints(self) -> dict[str, Any]:
        """{best/<monitored key>: score, best/checkpoint: path} of the checkpoint callbacks that saved in this run,
        for the run's summary (the final and best values of the metrics are there already: `define_metric`)."""
        summary: dict[str, Any] = {}
        for callback in self._saving_callbacks.values():
            if callback.monitor and callback.best_model_score is not None:
                summary[f"{BEST}{callback.monitor}"] = float(callback.best_model_score)
                summary[f"{BEST}checkpoint"] = callback.best_model_path
        return summary

    @rank_zero_only
    def log_checkpoints(self) -> None:
        """Log the best checkpoint (alias "best") and then the last one ("last"; W&B adds "latest") of the
        checkpoint callbacks that saved in this run, as versions of the artifact `model-<run id>`."""
        import wandb

        best, last = {}, {}
        for callback in self._saving_callbacks.values():
            if callback.monitor is not None and callback.best_model_path:
                best[Path(callback.best_model_path)] = callback
            if callback.last_model_path:
                last[Path(callback.last_model_path)] = callback
        run = self.experiment
        for path, callback, aliases in [
            *((p, c, ["best"]) for p, c in best.items()),
            *((p, c, ["last"]) for p, c in last.items()),
        ]:
            if not path.is_file():
                continue
            artifact = wandb.Artifact(
                f"model-{run.id}", type="model", metadata=self._checkpoint_metadata(path, callback)
            )
            artifact.add_file(str(path.resolve()), name="model.ckpt", policy="mutable")  # a copy: last.ckpt changes
            run.log_artifact(artifact, aliases=aliases)

    def _checkpoint_metadata(self, path: Path, callback: ModelCheckpoint) -> dict[str, Any]:
        """The checkpoint's file name, step and epoch, the callback's monitored score, and the evaluation metrics it
        was saved with."""
        summary = checkpoint_summary(path)
        metadata = {"file": path.name, "step": summary["step"], "epoch": summary["epoch"]}
        if callback.monitor is not None and Path(callback.best_model_path) == path:
            metadata |= {"monitor": callback.monitor, "score": float(callback.best_model_score)}
        metadata["metrics"] = self.evaluation_before(summary["step"])
        return metadata

    def evaluation_before(self, step: int | None) -> dict[str, float]:
        """The evaluation metrics logged last at or before `step` (a checkpoint's step: Lightning logs an epoch's
        validation at the step of its last batch, and the checkpoint after it is one step on)."""
        steps = [s for s in self._evaluations if step is None or s <= step]
        return dict(self._evaluations[max(steps)]) if steps else {}

    def finalize(self, status: str) -> None:
        super().finalize(status)
        run = started_wandb_run(self)
        if run is None or rank_zero_only.rank != 0:
            return
        if self._evaluations:  # as W&B's own summaries, but over all of a resumed run's starts
            run.summary.update(self.evaluation_summary())
        run.summary.update(self.best_checkpoints())
        if self.model_checkpoints:
            self.log_checkpoints()
        self._saving_callbacks.clear()
        self._defined, self._evaluations = set(), {}  # a later start is another W&B run, or a resumed one's new file
        run_folder = Path(os.path.relpath(Path(run.dir).parent))
        # Finish the W&B run so that the next fit/validate in this process gets a run of its own (or resumes this
        # one by id) instead of silently reusing it.
        run.finish(exit_code=0 if status == "success" else 1)
        forget_wandb_run(self)
        if self._offline_mode:
            rank_zero_info(
                f"W&B: logged offline (not logged in) to {run_folder}; upload it with: wandb sync {run_folder}"
            )


def _is_number(value: Any) -> bool:
    """Whether a logged value is a plain number (not an image, a table or a histogram)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
