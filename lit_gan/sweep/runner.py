"""Running a W&B-format sweep offline on one machine, with W&B's own engine (`sweeps.next_run`, `sweeps.stop_runs`).

Each trial is the command the W&B agent would run (`python -m lit_gan fit --config X --key=value ...`), as a
separate process, logged as a W&B run (offline unless you are logged in) grouped by the sweep. Its metric history
is read back from the run's W&B file with `wandb leet inspect`, which also drives early termination. The sweep's
state lives in `<out>/sweep.json`, rewritten atomically after every change, so running the same command again
resumes the sweep: finished trials are kept and interrupted ones are run again.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lit_gan.runs import atomic_write
from lit_gan.sweep.config import ArgumentCheck, SweepConfigError, cli_arguments, engine, load_sweep
from lit_gan.sweep.history import metric_curve, run_history
from lit_gan.sweep.tables import best_and_final, cell, write_csv

DONE = ("finished", "failed", "stopped")  # trial states that a resumed sweep keeps


@dataclass
class Trial:
    """One run of the sweep."""

    name: str  # trial-000, ...
    run_id: str  # the W&B run id (also the run folder's name)
    params: dict  # {"model.lr": 0.0002, ...}
    state: str = "pending"  # pending, running, finished, failed, stopped (early termination), killed (interrupted)
    history: list[dict] = field(default_factory=list)  # the metric's logged values, with their steps
    exit_code: int | None = None


class SweepRunner:
    """Runs the sweep file `path` offline.

    Args:
        path: the sweep YAML (W&B's format, see `lit_gan.sweep.config`).
        count: trials to run in all, finished ones of earlier invocations included (default: the grid's size, or
            the file's `run_cap`; required for random and bayes without `run_cap`).
        parallel: trials to run at once, as separate processes.
        out: the sweep's folder (default `runs/sweeps/<name>`).
        root: folder the trials run in (their `--config` and `runs/` are relative to it).
        poll_s: seconds between checks of the running trials' metrics.
        check_arguments: parses a trial's command line without running it (`lightning_cli.rejected_arguments`).
    """

    def __init__(
        self, path, count=None, parallel=1, out=None, root=None, poll_s=5.0, *, check_arguments: ArgumentCheck
    ) -> None:
        self.root = Path(root or Path.cwd())
        self.config = load_sweep(path, self.root, check_arguments=check_arguments)
        self.name = self.config.get("name") or Path(path).stem
        self.out = Path(out or self.root / "runs" / "sweeps" / self.name)
        self.metric = self.config["metric"]["name"]
        self.goal = self.config["metric"].get("goal", "minimize")
        self.count, self.parallel, self.poll_s = count or self.config.get("run_cap"), parallel, poll_s
        if self.count is None and self.config["method"] != "grid":
            raise SweepConfigError(f"{path}: a {self.config['method']} sweep needs --count (or run_cap in the file)")
        if parallel < 1:
            raise SweepConfigError(f"--parallel must be >= 1, got {parallel}")
        self.trials: list[Trial] = self._restore()
        self.processes: dict[str, subprocess.Popen] = {}

    # -- state ----------------------------------------------------------------------------------------------------

    def _restore(self) -> list[Trial]:
        state = self.out / "sweep.json"
        if not state.is_file():
            return []
        trials = [Trial(**t) for t in json.loads(state.read_text())["trials"]]
        for trial in trials:
            if trial.state not in DONE:
                trial.state, trial.history = "pending", []  # interrupted: run it again
        return trials

    def _save(self) -> None:
        text = json.dumps({"name": self.name, "config": self.config, "trials": [asdict(t) for t in self.trials]})
        atomic_write(self.out / "sweep.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def _as_sweep_runs(self) -> list:
        SweepRun = engine().SweepRun  # noqa: N806

        states = {"pending": "running", "killed": "killed", "stopped": "finished"}
        return [
            SweepRun(
                name=t.name,
                config={k: {"value": v} for k, v in t.params.items()},
                state=states.get(t.state, t.state),
                history=t.history,
                summary_metrics=t.history[-1] if t.history else {},
            )
            for t in self.trials
        ]

    # -- running --------------------------------------------------------------------------------------------------

    def run(self) -> list[Trial]:
        """Run trials until `count` have run or the grid is done; returns all trials. Ctrl-C stops the running
        trials (they are run again on resume) and keeps the finished ones."""
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            while True:
                self._launch_pending()
                if not self.processes and not self._propose():
                    break
                self._poll()
                time.sleep(self.poll_s if self.processes else 0)
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            self._save()
            self.write_table()
        return self.trials

    def _propose(self) -> bool:
        """Add the next trial proposed by W&B's engine; False when the sweep is complete."""
        if self.count is not None and len(self.trials) >= self.count:
            return False
        proposal = engine().next_run(self.config, self._as_sweep_runs())
        if proposal is None:
            return False
        params = {k: _plain(v["value"]) for k, v in proposal.config.items()}
        self.trials.append(Trial(f"trial-{len(self.trials):03d}", uuid.uuid4().hex[:8], params))
        self._save()
        return True

    def _launch_pending(self) -> None:
        while len(self.processes) < self.parallel:
            pending = [t for t in self.trials if t.state == "pending"]
            if not pending and not self._propose():
                return
            trial = next(t for t in self.trials if t.state == "pending")
            self._start(trial)

    def _start(self, trial: Trial) -> None:
        args = [*cli_arguments(self.config), *(f"--{k}={v}" for k, v in trial.params.items())]
        env = {**os.environ, "WANDB_RUN_ID": trial.run_id, "WANDB_RUN_GROUP": self.name, "WANDB_JOB_TYPE": "sweep"}
        # Each trial gets its own W&B service: one shared with this process (if it started W&B) would keep a killed
        # trial's run id "in use" and refuse the rerun that resumes it.
        env.pop("WANDB_SERVICE", None)
        log = open(self.out / f"{trial.name}.log", "w")  # noqa: SIM115  (closed when the process ends)
        print(f"sweep {self.name}: {trial.name} ({trial.run_id}) {' '.join(args[3:])}", flush=True)
        self.processes[trial.name] = subprocess.Popen(
            [sys.executable, "-m", "lit_gan", *args],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runner alone, which stops each trial once, cleanly
            preexec_fn=_interruptible,
        )
        trial.state = "running"
        self._save()

    def _poll(self) -> None:
        """Read the running trials' metrics, apply early termination, and collect the ones that ended."""
        sweeps = engine()
        for name, process in list(self.processes.items()):
            trial = self._trial(name)
            ended = process.poll() is not None  # checked first: after it, the history read is complete
            trial.history = self.read_history(trial)
            if ended:
                trial.exit_code = process.returncode
                if trial.state == "running":
                    trial.state = "finished" if process.returncode == 0 else "failed"
                del self.processes[name]
        if self.config.get("early_terminate"):
            for run in sweeps.stop_runs(self.config, self._as_sweep_runs()):
                trial = self._trial(run.name)
                if trial.name in self.processes and trial.state == "running":
                    trial.state = "stopped"
                    self.processes[trial.name].send_signal(signal.SIGINT)  # Lightning ends the run cleanly
                    print(f"sweep {self.name}: early termination of {trial.name}", flush=True)
        self._save()

    def _interrupt(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            self._trial(name).state = "killed"
        self.processes.clear()

    def _trial(self, name: str) -> Trial:
        return next(t for t in self.trials if t.name == name)

    def read_history(self, trial: Trial) -> list[dict]:
        """The metric's values the trial has logged so far, from its W&B run file."""
        curve = metric_curve(run_history(self.root / "runs", trial.run_id), self.metric)
        return [{self.metric: value, "step": step} for step, value in curve] or trial.history

    # -- results --------------------------------------------------------------------------------------------------

    def table(self) -> list[dict]:
        """One row per trial: name, run id, state, parameters, best and final metric."""
        return [
            {
                "trial": t.name,
                "run_id": t.run_id,
                "state": t.state,
                **t.params,
                **best_and_final(self.metric, [h[self.metric] for h in t.history], self.goal),
            }
            for t in self.trials
        ]

    def write_table(self) -> None:
        """Save the table as trials.json and trials.csv in the sweep's folder, and print it."""
        rows = self.table()
        if not rows:
            return
        atomic_write(self.out / "trials.json", lambda tmp: tmp.write_text(json.dumps(rows, indent=2)))
        write_csv(self.out / "trials.csv", rows)
        print(format_table(rows), flush=True)


def format_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _plain(value):
    """W&B's engine can propose numpy scalars; make them plain Python for the command line and JSON."""
    return value.item() if hasattr(value, "item") else value


def _interruptible() -> None:
    """In a trial process before it starts: SIGINT interrupts it (Python then raises KeyboardInterrupt, which
    Lightning turns into a clean shutdown), even if the sweep itself was started with SIGINT ignored (nohup, &)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
