"""`python -m lit_gan dashboard`: the W&B workspace built with wandb-workspaces, validated and saved through the
library's own save path (its GraphQL call replaced: no network), and the errors without credentials or library."""

import json
import sys

import pytest

pytest.importorskip("wandb_workspaces", reason="the dashboard extra: pip install -e '.[dev]'")
import wandb  # noqa: E402
import wandb_workspaces.reports.v2 as wr  # noqa: E402
import wandb_workspaces.workspaces as ws  # noqa: E402

from lit_gan.cli import main  # noqa: E402
from lit_gan.sweep import workspace  # noqa: E402
from lit_gan.sweep.workspace import DashboardError, ProjectKeys, build_workspace, varying_parameters  # noqa: E402

CYCLEGAN_KEYS = {
    *(f"val/{m}{d}" for m in ("fid", "kid_mean", "kid_std", "is_mean", "ssim") for d in ("", "_AtoB", "_BtoA")),
    *("train/G_A", "train/G_B", "train/cycle_A", "train/D_A", "train/lr_G", "train/lr_D", "val/cycle_A"),
    *("samples/AtoB", "samples/BtoA", "translations/AtoB", "translations/BtoA", "perf/metrics_seconds"),
}


def panels(built) -> dict[str, list]:
    return {section.name: section.panels for section in built.sections}


def test_the_workspace_has_a_section_per_kind_of_key_and_the_sweep_panels():
    built = build_workspace("team", "gans", ProjectKeys(CYCLEGAN_KEYS, ["model.init_args.lr", "data.batch_size"]))
    sections = panels(built)
    assert list(sections) == ["Quality metrics", "Losses", "Learning rates", "Sample grids", "Translations", "Sweep"]
    quality = [(type(p), p.y) for p in sections["Quality metrics"]]
    assert quality[:3] == [(wr.LinePlot, ["val/fid"]), (wr.LinePlot, ["val/fid_AtoB"]), (wr.LinePlot, ["val/fid_BtoA"])]
    assert (wr.LinePlot, ["val/kid_mean_BtoA"]) in quality and (wr.LinePlot, ["val/ssim"]) in quality
    assert not any("kid_std" in y[0] for _, y in quality)  # a spread, not a quality
    assert all(p.x == "trainer/global_step" for p in sections["Quality metrics"])
    assert sorted(p.y[0] for p in sections["Losses"]) == sorted(
        ["train/G_A", "train/G_B", "train/cycle_A", "train/D_A", "val/cycle_A"]
    )
    assert [p.y for p in sections["Learning rates"]] == [["train/lr_D", "train/lr_G"]]
    assert [(type(p), p.media_keys) for p in sections["Sample grids"]] == [
        (wr.MediaBrowser, ["samples/AtoB"]),
        (wr.MediaBrowser, ["samples/BtoA"]),
    ]
    assert [(type(p), p.table_name) for p in sections["Translations"]] == [
        (wr.WeavePanelSummaryTable, "translations/AtoB"),
        (wr.WeavePanelSummaryTable, "translations/BtoA"),
    ]
    coordinates, importance = sections["Sweep"]
    assert isinstance(coordinates, wr.ParallelCoordinatesPlot)
    assert [c.metric for c in coordinates.columns] == [
        wr.Config("model.init_args.lr"),
        wr.Config("data.batch_size"),
        wr.SummaryMetric("val/fid.min"),  # the best FID (the metric's summary), lower is better: inverted
    ]
    assert coordinates.columns[-1].inverted
    assert isinstance(importance, wr.ParameterImportancePlot) and importance.with_respect_to == "val/fid"
    # W&B's own models: the workspace converts to the view the library saves, and back.
    view = built._to_model()
    again = ws.Workspace._from_model(view)
    assert [s.name for s in again.sections] == list(sections)
    assert built.runset_settings.order[0].item == ws.Summary("val/fid.min")  # runs sorted by their best FID
    assert built.settings.x_axis == "trainer/global_step"


def test_without_varying_parameters_there_is_no_sweep_section_and_a_new_project_gets_fid_and_kid():
    sections = panels(build_workspace("team", "gans", ProjectKeys()))
    assert list(sections) == ["Quality metrics"]
    assert [p.y for p in sections["Quality metrics"]] == [["val/fid"], ["val/kid_mean"]]


def test_the_parameters_are_the_plain_config_values_that_differ():
    configs = [
        {"model": {"init_args": {"lr": 0.1, "lambda_A": 10.0}}, "trainer": {"logger": {"init_args": {"name": "a"}}}},
        {"model": {"init_args": {"lr": 0.2, "lambda_A": 10.0}}, "trainer": {"logger": {"init_args": {"name": "b"}}}},
        {"model": {"init_args": {"lr": 0.2, "lambda_A": 10.0, "gan_mode": "lsgan"}}, "data": {"sizes": [1, 2]}},
    ]
    assert varying_parameters(configs) == ["model.init_args.gan_mode", "model.init_args.lr"]


@pytest.fixture
def fake_wandb_server(monkeypatch):
    """W&B's API without a network: the GraphQL calls of wandb-workspaces' save are recorded and answered."""
    calls = []

    class Client:
        app_url = "https://wandb.example"

    class Api:
        client = Client()
        default_entity = "me"

    def execute_graphql(api, query, variables=None):
        calls.append((query, variables))
        return {"upsertView": {"view": {"name": "nw4bcd", "id": "VmlldzoxMjM="}, "inserted": True}}

    monkeypatch.setattr(wandb, "Api", Api)
    monkeypatch.setattr(ws.internal, "execute_graphql", execute_graphql)
    monkeypatch.setattr(workspace, "project_keys", lambda entity, project, max_runs: ProjectKeys(CYCLEGAN_KEYS))
    return calls


def test_dashboard_saves_the_workspace_with_the_librarys_save(fake_wandb_server, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--entity", "team", "--project", "gans", "--name", "GAN runs"])
    assert exit_info.value.code == 0
    ((query, variables),) = fake_wandb_server  # one saved view
    assert "upsertView" in query and (variables["entityName"], variables["projectName"]) == ("team", "gans")
    spec = json.loads(variables["spec"])
    names = [s["name"] for s in spec["section"]["panelBankConfig"]["sections"]]
    assert names == ["Quality metrics", "Losses", "Learning rates", "Sample grids", "Translations"]
    assert "https://wandb.example/team/gans?nw=" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the entity of the credentials, the project of lit_gan's logger
        main(["dashboard"])
    assert (fake_wandb_server[1][1]["entityName"], fake_wandb_server[1][1]["projectName"]) == ("me", "lit_gan")


def test_without_credentials_a_clear_error_and_nothing_saved(fake_wandb_server, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(DashboardError, match="wandb login"):
        main(["dashboard", "--entity", "team", "--project", "gans"])
    monkeypatch.setattr(sys, "argv", ["lit_gan", "dashboard", "--entity", "team", "--project", "gans"])
    with pytest.raises(SystemExit) as exit_info:  # from the command line: one error line
        main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("error: the dashboard command saves a workspace on W&B's servers")
    assert fake_wandb_server == []


def test_without_the_library_the_error_says_how_to_install_it(fake_wandb_server, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    for name in [m for m in sys.modules if m.startswith("wandb_workspaces")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(DashboardError, match=r"pip install 'lit_gan\[dashboard\]'"):
        main(["dashboard", "--entity", "team", "--project", "gans"])
    assert fake_wandb_server == []


def test_the_project_is_read_from_its_runs_summaries_and_configs(monkeypatch):
    class Run:
        def __init__(self, summary: dict, config: dict) -> None:
            self.summary, self.config = summary, config

    class Api:
        def runs(self, path, order, per_page, lazy):
            assert (path, order, lazy) == ("team/gans", "-created_at", False)
            return iter(
                [
                    Run({"val/fid": {"min": 3.0}, "_step": 9}, {"model": {"init_args": {"lr": 0.1}}, "_wandb": {}}),
                    Run({"samples/AtoB": {}, "translations/AtoB": {}}, {"model": {"init_args": {"lr": 0.2}}}),
                    Run({"train/G": 1.0}, {"model": {"init_args": {"lr": 0.3}}}),
                ]
            )

    monkeypatch.setattr(wandb, "Api", Api)
    keys = workspace.project_keys("team", "gans", max_runs=2)  # the newest two
    assert keys == ProjectKeys({"val/fid", "samples/AtoB", "translations/AtoB"}, ["model.init_args.lr"])
