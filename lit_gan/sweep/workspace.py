"""`python -m lit_gan dashboard --entity E --project P`: a saved W&B workspace laid out for lit_gan's GAN runs.

Built with W&B's own `wandb-workspaces` library (`pip install 'lit_gan[dashboard]'`), from the keys the project's
runs logged: sections for the quality metrics (FID, KID, IS, SSIM, PSNR, LPIPS; each over all directions and per
direction), the losses (training and held-out), the learning rates, the sample grids and the per-image translation
tables, and, for a project with several configurations (sweeps), a parallel coordinates panel and a parameter
importance panel over the config values that differ. The runs table is sorted by the best FID.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from lit_gan.loggers import wandb_credentials_available
from lit_gan.metric_keys import (
    LEARNING_RATES,
    PRIMARY,
    QUALITY,
    SAMPLES,
    SPREADS,
    STEP_KEY,
    TEST,
    TRAIN,
    TRANSLATIONS,
    VAL,
    VAL_FID,
    VAL_KID,
    best_summary,
    goal,
)

DEFAULT_KEYS = (VAL_FID, VAL_KID)  # what every lit_gan run logs: the panels of a project with no runs yet
SKIPPED_PARAMETERS = ("logger", "ckpt_path", "dirpath", "save_dir", "default_root_dir", "name")  # not settings


class DashboardError(RuntimeError):
    """The workspace cannot be built or saved: no W&B credentials, or wandb-workspaces not installed."""


@dataclass
class ProjectKeys:
    """What a project's runs logged and which config values vary between them."""

    logged: set[str] = field(default_factory=set)
    """Every key in the runs' summaries (each logged key is there): `val/fid`, `train/G_A`, `samples/AtoB`, ..."""
    parameters: list[str] = field(default_factory=list)
    """Config keys (dotted, as W&B shows nested config: `model.init_args.lr`) whose values differ between runs."""


def workspaces_library():
    """W&B's `wandb_workspaces.workspaces` and `wandb_workspaces.reports.v2`; a DashboardError saying how to install
    them when missing."""
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError as error:
        raise DashboardError(
            "the dashboard command needs W&B's wandb-workspaces library: pip install 'lit_gan[dashboard]' "
            f"(or pip install wandb-workspaces); {error}"
        ) from error
    return ws, wr


def build_workspace(entity: str, project: str, keys: ProjectKeys, name: str = "lit_gan"):
    """The workspace (a `wandb_workspaces.workspaces.Workspace`, validated by W&B's models) for `keys`; not saved."""
    ws, wr = workspaces_library()
    logged = keys.logged or set(DEFAULT_KEYS)
    sections = [
        section(ws, "Quality metrics", quality_panels(wr, logged)),
        section(ws, "Losses", [line(wr, key) for key in sorted(loss_keys(logged))]),
        section(ws, "Learning rates", [line(wr, *sorted(k for k in logged if is_learning_rate(k)), title="lr")]),
        section(ws, "Sample grids", [media(wr, key) for key in sorted(k for k in logged if k.startswith(SAMPLES))]),
        section(ws, "Translations", [table(wr, key) for key in sorted(translation_tables(logged))]),
        section(ws, "Sweep", sweep_panels(wr, keys.parameters, primary_metric(logged))),
    ]
    sort = ws.Ordering(ws.Summary(f"{primary_metric(logged)}.{best_summary(primary_metric(logged))}"), ascending=True)
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[s for s in sections if s.panels],
        settings=ws.WorkspaceSettings(x_axis=STEP_KEY),
        runset_settings=ws.RunsetSettings(order=[sort]),
    )


def section(ws, title: str, panels: list):
    """An open section of `panels` (empty lists are dropped by `build_workspace`)."""
    return ws.Section(name=title, panels=[p for p in panels if p is not None], is_open=True)


def line(wr, *keys: str, title: str | None = None):
    """A line plot of `keys` over `trainer/global_step` (None without keys)."""
    return wr.LinePlot(x=STEP_KEY, y=list(keys), title=title or keys[0]) if keys else None


def media(wr, key: str):
    """A media panel of the image key `key` (sample grids), stepping through the logged steps."""
    return wr.MediaBrowser(title=key, media_keys=[key], gallery_axis="step")


def table(wr, key: str):
    """The latest W&B Table logged under `key` in each run (its summary), full width."""
    return wr.WeavePanelSummaryTable(table_name=key, layout=wr.Layout(w=24, h=12))


def quality_panels(wr, logged: set[str]) -> list:
    """A line plot per logged quality metric (`val/fid`, then `val/fid_AtoB`, ...: over all directions, then per
    direction), and the test metrics (`test/...`), in the order of `metric_keys.QUALITY`."""
    panels = []
    for prefix in (VAL, TEST):
        for metric in QUALITY:
            key = f"{prefix}{metric}"
            directions = sorted(k for k in logged if k.startswith(f"{key}_") and not k.startswith(f"{key}_std"))
            panels += [line(wr, k) for k in ([key] if key in logged else []) + directions]
    return panels


def loss_keys(logged: set[str]) -> list[str]:
    """Training losses (`train/...` but learning rates) and held-out losses (`val/...` that are no quality metric:
    `val/cycle_A`, `val/L1`, `val/D_real`)."""
    quality = tuple(f"{p}{m}" for p in (VAL, TEST) for m in (*QUALITY, *SPREADS))
    train = [k for k in logged if k.startswith(TRAIN) and not is_learning_rate(k)]
    held_out = [k for k in logged if k.startswith(VAL) and not k.startswith(quality)]
    return train + held_out


def is_learning_rate(key: str) -> bool:
    return key.startswith(LEARNING_RATES)


def translation_tables(logged: set[str]) -> set[str]:
    """The keys of the translation tables (`translations/<direction>`), also from flattened summary keys
    (`translations/AtoB._type`)."""
    return {k.split(".")[0] for k in logged if k.startswith(TRANSLATIONS)}


def primary_metric(logged: set[str]) -> str:
    """The metric runs are ranked by: `val/fid`, or the first logged quality metric."""
    candidates = [f"{VAL}{m}" for m in QUALITY if f"{VAL}{m}" in logged]
    return PRIMARY if PRIMARY in logged or not candidates else candidates[0]


def sweep_panels(wr, parameters: list[str], metric: str) -> list:
    """For runs that differ in `parameters`: a parallel coordinates plot (each parameter, then the best `metric`,
    inverted when lower is better) and the importance of each parameter for `metric`; none without parameters."""
    if not parameters:
        return []
    best = wr.SummaryMetric(f"{metric}.{best_summary(metric)}")
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p)) for p in parameters]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=best, inverted=goal(metric) == "minimize"))
    return [
        wr.ParallelCoordinatesPlot(columns=columns, title=f"best {metric} by parameter", layout=wr.Layout(w=24, h=9)),
        wr.ParameterImportancePlot(with_respect_to=metric, layout=wr.Layout(w=24, h=9)),
    ]


# -- reading the project (online) -----------------------------------------------------------------------------------


def varying_parameters(configs: Iterable[dict]) -> list[str]:
    """The dotted config keys whose (plain) values differ between `configs`, leaving out paths and names."""
    from lit_gan.sweep.compare import flatten

    flat = [flatten(c) for c in configs]
    keys = sorted({k for config in flat for k in config if not k.startswith("_")})
    varying = []
    for key in keys:
        values = [config.get(key) for config in flat]
        plain = all(isinstance(v, (int, float, str, bool)) or v is None for v in values)
        skipped = any(part in SKIPPED_PARAMETERS for part in key.split("."))
        if plain and not skipped and len({json.dumps(v) for v in values}) > 1:
            varying.append(key)
    return varying


def project_keys(entity: str, project: str, max_runs: int = 200) -> ProjectKeys:
    """What the newest `max_runs` runs of `entity/project` logged, and their differing config values (W&B's API)."""
    import wandb

    api = wandb.Api()
    runs = api.runs(f"{entity}/{project}", order="-created_at", per_page=min(max_runs, 100), lazy=False)
    logged, configs = set(), []
    for run, _ in zip(runs, range(max_runs)):
        logged |= set(run.summary.keys())
        configs.append({k: v for k, v in run.config.items() if not k.startswith("_")})
    return ProjectKeys({k for k in logged if not k.startswith("_")}, varying_parameters(configs))


# -- the command ----------------------------------------------------------------------------------------------------


def dashboard_command(
    entity: str | None = None, project: str = "lit_gan", name: str = "lit_gan", max_runs: int = 200
) -> int:
    """Save a W&B workspace for a project: quality metrics, losses, learning rates, samples, translations, sweeps.

    Args:
        entity: W&B entity (user or team) that owns the project; default: your default entity.
        project: W&B project whose runs the workspace shows (the logger's `project`).
        name: the workspace's name in W&B (a new saved view).
        max_runs: read the keys and configs of at most this many of the newest runs.

    Returns:
        0 (the workspace is saved; its URL is printed).

    Raises:
        DashboardError: without W&B credentials (`wandb login` or WANDB_API_KEY), or without wandb-workspaces.
    """
    if not wandb_credentials_available():
        raise DashboardError(
            "the dashboard command saves a workspace on W&B's servers and needs W&B credentials: run `wandb login` "
            "or set WANDB_API_KEY (offline, `python -m lit_gan compare RUN...` writes an HTML dashboard instead)"
        )
    workspaces_library()  # before reading the project: a missing library fails first
    if entity is None:
        import wandb

        entity = wandb.Api().default_entity
        if not entity:
            raise DashboardError("no default W&B entity for these credentials: name one with --entity")
    workspace = build_workspace(entity, project, project_keys(entity, project, max_runs), name)
    workspace.save()
    print(f"saved workspace {name!r}: {workspace.url}")
    return 0
