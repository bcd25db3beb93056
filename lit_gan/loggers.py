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
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from lit_gan.compat import forget_wandb_run, set_wandb_run_id, started_wandb_run, wandb_init_settings
from lit_gan.journal import (
    JOURNAL_NAME,
    JournalEntry,
    RunJournal,
    decode_value,
    flatten_row,
    journal_numbers,
    last_journal_steps,
    missing_from_history,
)
from lit_gan.metric_keys import BEST, STEP_KEY, best_summary, is_evaluation_metric
from lit_gan.runs import checkpoint_summary
from lit_gan.sweep.history import last_logged_steps

ROW_KEYS = frozenset({"epoch"})  # added by Lightning to every row it logs: logged with a row's new values, not alone


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
        journal: keep the run's journal, `<save_dir>/<project>/<run id>/checkpoints/journal.jsonl` (`lit_gan.journal`):
            every logged value with its step, flushed as it is logged, from which a resumed run logs again what W&B
            lost. Off, a run killed with W&B's service loses the rows the service had not written yet.
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
        journal: bool = True,
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
        self.keep_journal = journal
        self._journal: RunJournal | None = None
        self.replayed = 0  # values of a resumed run logged again from its journal (`continue_run`)
        settings = wandb_init_settings(self)
        if settings.get("anonymous") is None:  # W&B warns about the setting even when it is None
            settings.pop("anonymous", None)

    @property
    def offline(self) -> bool:
        """Whether the run is logged offline (to local files only)."""
        return self._offline_mode

    def continue_run(
        self,
        run_id: str,
        earlier_rows: Iterable[Mapping[str, Any]] = (),
        journal: Iterable[JournalEntry] = (),
        server_rows: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Log into the existing run `run_id` instead of a new one (resuming), completing its W&B history from its
        journal; call it before the run starts.

        Args:
            run_id: the W&B run id.
            earlier_rows: the W&B history rows the run logged before that are still there (its local W&B files,
                `lit_gan.sweep.history.run_history`; none on another machine).
            journal: the entries of the run's journal (`lit_gan.journal.read_journal`): everything it logged before.
                What of it `earlier_rows` does not hold (rows W&B's service lost when it was killed; all of it on
                another machine) is logged again now, at its own steps.
            server_rows: the history rows the W&B server holds (an online run: `server_history`; all there is of the
                history on a machine without the run's local W&B files); not logged again either.

        A run resumed from a checkpoint trains the steps between the checkpoint and the interruption again, and
        computes them exactly as before: a key is not logged again at a step up to the last one the journal or the
        history holds it at (`log_metrics`), so the history holds every step once. The evaluation metrics of both
        count towards the best values in the run's summary (W&B's own summaries of a resumed run only see the values
        logged since the resume).
        """
        run = started_wandb_run(self)
        if run is not None:
            raise RuntimeError(f"the W&B run {run.id} has already started; cannot switch to {run_id}")
        set_wandb_run_id(self, run_id)
        wandb_init_settings(self)["resume"] = "allow"
        local, server, journal = list(earlier_rows), list(server_rows), list(journal)
        rows = local + server
        self._logged_through = last_logged_steps(rows)
        for key, step in last_journal_steps(journal).items():
            self._logged_through[key] = max(step, self._logged_through.get(key, step))
        for row in rows:
            if STEP_KEY in row:
                self._record_evaluation(row, int(row[STEP_KEY]))
        for step, numbers in journal_numbers(journal):
            self._record_evaluation(numbers, step)
        missing = missing_from_history(journal, local, server)
        if missing and rank_zero_only.rank == 0:
            self._replay(missing)

    def server_history(self, run_id: str) -> list[dict[str, Any]]:
        """The history of run `run_id` on the W&B server, in the local files' form ([] when the server cannot be
        reached or has no such run: said in one line; the local files and the journal are then all there is)."""
        import wandb

        try:
            api = wandb.Api(timeout=30)
            entity = self._wandb_init.get("entity") or api.default_entity
            run = api.run(f"{entity}/{self.name}/{run_id}")
            return [flatten_row(row) for row in run.scan_history()]
        except Exception as error:  # noqa: BLE001 (no network, not logged in, a run never synced: go on without)
            rank_zero_warn(
                f"W&B: could not read run {run_id}'s history from the server ({type(error).__name__}: {error}); rows "
                "the server already holds but this machine's runs/wandb does not may be logged again"
            )
            return []

    def _replay(self, entries: list[JournalEntry]) -> None:
        """Log the journal's `entries` into the W&B run at their own steps (not into the journal: they are in it)."""
        root = self.journal_file().parent.parent
        self.replayed = 0
        for entry in entries:
            values = {key: decode_value(value, root) for key, value in entry.values.items()}
            values = {key: value for key, value in values.items() if value is not None}
            if values:
                self._define_evaluation_metrics(values)
                super().log_metrics(values, entry.step)
                self.replayed += len(values)

    def journal_file(self, run_id: str | None = None) -> Path:
        """The journal of run `run_id` (this logger's run by default): `<save_dir>/<project>/<run id>/checkpoints/
        journal.jsonl`, beside the checkpoints Lightning writes for the run."""
        return Path(self.save_dir) / str(self.name) / str(run_id or self.version) / "checkpoints" / JOURNAL_NAME

    def _append_to_journal(self, metrics: Mapping[str, Any], step: int | None) -> None:
        if self._journal is None:
            path = self.journal_file()
            self._journal = RunJournal(path, root=path.parent.parent)
        self._journal.append(step, metrics)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Lightning's `log_metrics` (sample grids and tables go through it too), leaving out the keys a resumed run
        already logged at this step or later (see `continue_run`); written to the journal first."""
        if self._logged_through and step is not None:
            new = {key for key in metrics if step > self._last_logged_step(key)}
            if not new - ROW_KEYS:  # nothing but the `epoch` Lightning adds to every row
                return
            metrics = {key: value for key, value in metrics.items() if key in new or key in ROW_KEYS}
        self._define_evaluation_metrics(metrics)
        if step is not None:
            self._record_evaluation(metrics, step)
        if self.keep_journal:
            self.experiment  # noqa: B018 (the run id names the journal's folder)
            self._append_to_journal(metrics, step)
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
        """{key: {"min" or "max": its best value, "best_step": the step of the (first) best, "last": its value at the
        last step}} of every evaluation metric logged by the run, resumed starts included (what its W&B summary
        holds)."""
        summary: dict[str, dict[str, float]] = {}
        for step in sorted(self._evaluations):
            for key, value in self._evaluations[step].items():
                best = best_summary(key)
                earlier = summary.get(key)
                better = earlier is None or (value < earlier[best] if best == "min" else value > earlier[best])
                if better:
                    summary[key] = {best: value, "best_step": step, "last": value}
                else:
                    summary[key]["last"] = value
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

    def watch_checkpoints(self, callbacks: Iterable[Any]) -> None:
        """Report the best and last checkpoints of these callbacks when the run ends, even where they save nothing
        in this start: a resumed run whose best checkpoint is from before the resume reports it too."""
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                self.after_save_checkpoint(callback)

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
        if self._journal is not None:
            self._journal.close()
            self._journal = None
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
