"""StarGAN v2 against a condensed retyped copy of the reference code (clovaai/stargan-v2, core/model.py and
core/solver.py; its widths made parameters for tiny networks): parameter counts, the networks' outputs, and whole
training iterations (two discriminator and two generator steps each) in float64."""

import copy
import functools
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from lit_gan.models import StarGANv2
from lit_gan.networks.stargan_v2 import MappingNetwork, MultiTaskDiscriminator, StarGANv2Generator, StyleEncoder

# -- the reference, condensed but unchanged in what it computes (w_hpf 0: no high-pass branch) ---------------------


class RefResBlk(nn.Module):
    def __init__(self, dim_in, dim_out, normalize=False, downsample=False):
        super().__init__()
        self.actv, self.normalize, self.downsample = nn.LeakyReLU(0.2), normalize, downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x):
        x = self.conv1x1(x) if self.learned_sc else x
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x):
        x = self.norm1(x) if self.normalize else x
        x = self.conv1(self.actv(x))
        x = F.avg_pool2d(x, 2) if self.downsample else x
        x = self.norm2(x) if self.normalize else x
        return self.conv2(self.actv(x))

    def forward(self, x):
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class RefAdaIN(nn.Module):
    def __init__(self, style_dim, num_features):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x, s):
        h = self.fc(s)
        gamma, beta = torch.chunk(h.view(h.size(0), h.size(1), 1, 1), chunks=2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class RefAdainResBlk(nn.Module):
    def __init__(self, dim_in, dim_out, style_dim=64, upsample=False):
        super().__init__()
        self.actv, self.upsample, self.learned_sc = nn.LeakyReLU(0.2), upsample, dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = RefAdaIN(style_dim, dim_in)
        self.norm2 = RefAdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        return self.conv1x1(x) if self.learned_sc else x

    def _residual(self, x, s):
        x = self.actv(self.norm1(x, s))
        x = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        x = self.actv(self.norm2(self.conv1(x), s))
        return self.conv2(x)

    def forward(self, x, s):
        return (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)


class RefGenerator(nn.Module):
    def __init__(self, img_size=256, style_dim=64, max_conv_dim=512, dim_in=None):
        super().__init__()
        dim_in = dim_in or 2**14 // img_size
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(dim_in, 3, 1))
        for _ in range(int(math.log2(img_size)) - 4):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(RefResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, RefAdainResBlk(dim_out, dim_in, style_dim, upsample=True))
            dim_in = dim_out
        for _ in range(2):
            self.encode.append(RefResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, RefAdainResBlk(dim_out, dim_out, style_dim))

    def forward(self, x, s):
        x = self.from_rgb(x)
        for block in self.encode:
            x = block(x)
        for block in self.decode:
            x = block(x, s)
        return self.to_rgb(x)


class RefMappingNetwork(nn.Module):
    def __init__(self, latent_dim=16, style_dim=64, num_domains=2, hidden=512):
        super().__init__()
        layers = [nn.Linear(latent_dim, hidden), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList()
        for _ in range(num_domains):
            self.unshared += [
                nn.Sequential(
                    nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                    nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, style_dim),
                )
            ]  # fmt: skip

    def forward(self, z, y):
        h = self.shared(z)
        out = torch.stack([layer(h) for layer in self.unshared], dim=1)
        return out[torch.LongTensor(range(y.size(0))), y]


def ref_trunk(img_size, max_conv_dim, dim_in):
    dim_in = dim_in or 2**14 // img_size
    blocks = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    for _ in range(int(math.log2(img_size)) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        blocks += [RefResBlk(dim_in, dim_out, downsample=True)]
        dim_in = dim_out
    return blocks + [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)], dim_out


class RefStyleEncoder(nn.Module):
    def __init__(self, img_size=256, style_dim=64, num_domains=2, max_conv_dim=512, dim_in=None):
        super().__init__()
        blocks, dim_out = ref_trunk(img_size, max_conv_dim, dim_in)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList([nn.Linear(dim_out, style_dim) for _ in range(num_domains)])

    def forward(self, x, y):
        h = self.shared(x).view(x.size(0), -1)
        out = torch.stack([layer(h) for layer in self.unshared], dim=1)
        return out[torch.LongTensor(range(y.size(0))), y]


class RefDiscriminator(nn.Module):
    def __init__(self, img_size=256, num_domains=2, max_conv_dim=512, dim_in=None):
        super().__init__()
        blocks, dim_out = ref_trunk(img_size, max_conv_dim, dim_in)
        self.main = nn.Sequential(*blocks, nn.Conv2d(dim_out, num_domains, 1, 1, 0))

    def forward(self, x, y):
        out = self.main(x).view(x.size(0), -1)
        return out[torch.LongTensor(range(y.size(0))), y]


def adv_loss(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, fill_value=target))


def r1_reg(d_out, x_in):
    grad = torch.autograd.grad(outputs=d_out.sum(), inputs=x_in, create_graph=True, retain_graph=True)[0]
    return 0.5 * grad.pow(2).view(x_in.size(0), -1).sum(1).mean(0)


def compute_d_loss(nets, args, x_real, y_org, y_trg, z_trg=None, x_ref=None):
    x_real.requires_grad_()
    out = nets["discriminator"](x_real, y_org)
    loss_real, loss_reg = adv_loss(out, 1), r1_reg(out, x_real)
    with torch.no_grad():
        if z_trg is not None:
            s_trg = nets["mapping_network"](z_trg, y_trg)
        else:
            s_trg = nets["style_encoder"](x_ref, y_trg)
        x_fake = nets["generator"](x_real, s_trg)
    loss_fake = adv_loss(nets["discriminator"](x_fake, y_trg), 0)
    return loss_real + loss_fake + args["lambda_reg"] * loss_reg, dict(real=loss_real, fake=loss_fake, reg=loss_reg)


def compute_g_loss(nets, args, x_real, y_org, y_trg, z_trgs=None, x_refs=None):
    if z_trgs is not None:
        (z_trg, z_trg2), style = z_trgs, nets["mapping_network"]
    else:
        (z_trg, z_trg2), style = x_refs, nets["style_encoder"]
    s_trg = style(z_trg, y_trg)
    x_fake = nets["generator"](x_real, s_trg)
    loss_adv = adv_loss(nets["discriminator"](x_fake, y_trg), 1)
    loss_sty = torch.mean(torch.abs(nets["style_encoder"](x_fake, y_trg) - s_trg))
    x_fake2 = nets["generator"](x_real, style(z_trg2, y_trg)).detach()
    loss_ds = torch.mean(torch.abs(x_fake - x_fake2))
    x_rec = nets["generator"](x_fake, nets["style_encoder"](x_real, y_org))
    loss_cyc = torch.mean(torch.abs(x_rec - x_real))
    loss = loss_adv + args["lambda_sty"] * loss_sty - args["lambda_ds"] * loss_ds + args["lambda_cyc"] * loss_cyc
    return loss, dict(adv=loss_adv, sty=loss_sty, ds=loss_ds, cyc=loss_cyc)


def reference_iteration(nets, optims, args, inputs):
    """One iteration of the reference's `Solver.train` (without the moving average), returning its loss terms."""

    def reset_grad():
        for optim in optims.values():
            optim.zero_grad()

    x_real, y_org = inputs["x_src"], inputs["y_src"]
    x_ref, x_ref2, y_trg, z_trg, z_trg2 = (inputs[k] for k in ("x_ref", "x_ref2", "y_ref", "z_trg", "z_trg2"))
    logged = {}
    for mode, kwargs in (("latent", dict(z_trg=z_trg)), ("ref", dict(x_ref=x_ref))):
        d_loss, terms = compute_d_loss(nets, args, x_real, y_org, y_trg, **kwargs)
        reset_grad()
        d_loss.backward()
        optims["discriminator"].step()
        logged.update({f"D_{mode}_{k}": v for k, v in terms.items()})
    g_loss, terms = compute_g_loss(nets, args, x_real, y_org, y_trg, z_trgs=[z_trg, z_trg2])
    reset_grad()
    g_loss.backward()
    for net in ("generator", "mapping_network", "style_encoder"):
        optims[net].step()
    logged.update({f"G_latent_{k}": v for k, v in terms.items()})
    g_loss, terms = compute_g_loss(nets, args, x_real, y_org, y_trg, x_refs=[x_ref, x_ref2])
    reset_grad()
    g_loss.backward()
    optims["generator"].step()
    logged.update({f"G_ref_{k}": v for k, v in terms.items()})
    args["lambda_ds"] -= args["initial_lambda_ds"] / args["ds_iter"]
    return logged


# -- parameter counts ---------------------------------------------------------------------------------------------


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_reference_at_its_afhq_defaults():
    """The reference's AFHQ setting: 256 px, 3 domains, style 64, latent 16, w_hpf 0. The figures were measured by
    building the reference's own core/model.py (commit 875b70a): generator 33,892,995, mapping network 3,259,072,
    style encoder 20,949,760, discriminator 20,852,803 (its CelebA-HQ generator, with the high-pass branch's extra
    block: 43,467,395)."""
    model = StarGANv2(domains=("cat", "dog", "wild"))
    nets = [model.generators[k] for k in ("generator", "mapping", "style_encoder")] + [model.discriminators["D"]]
    assert [count(n) for n in nets] == [33_892_995, 3_259_072, 20_949_760, 20_852_803]
    refs = [RefGenerator(256), RefMappingNetwork(16, 64, 3), RefStyleEncoder(256, 64, 3), RefDiscriminator(256, 3)]
    for ref, ours in zip(refs, nets, strict=True):
        assert [p.shape for p in ref.parameters()] == [p.shape for p in ours.parameters()]


# -- the networks' outputs ----------------------------------------------------------------------------------------

TINY = dict(image_size=32, style_dim=8, latent_dim=4, hidden_dim=16, max_conv_dim=16, channels=4)


def tiny_pairs(num_domains=3):
    """(reference, ours) for each network, tiny, ours' weights copied into the reference's."""
    pairs = [
        (RefGenerator(32, 8, 16, dim_in=4), StarGANv2Generator(32, 8, 16, channels=4)),
        (RefMappingNetwork(4, 8, num_domains, hidden=16), MappingNetwork(4, 8, num_domains, hidden_dim=16)),
        (RefStyleEncoder(32, 8, num_domains, 16, dim_in=4), StyleEncoder(32, 8, num_domains, 16, channels=4)),
        (RefDiscriminator(32, num_domains, 16, dim_in=4), MultiTaskDiscriminator(32, num_domains, 16, channels=4)),
    ]
    with torch.no_grad():
        for ref, ours in pairs:
            for p_ref, p_ours in zip(ref.parameters(), ours.parameters(), strict=True):
                p_ours.normal_(0, 0.3)
                p_ref.copy_(p_ours)
    return pairs


def test_the_networks_compute_what_the_reference_networks_compute():
    torch.manual_seed(0)
    (rG, G), (rM, M), (rE, E), (rD, D) = tiny_pairs()
    x, y, z, s = torch.randn(3, 3, 32, 32), torch.tensor([2, 0, 1]), torch.randn(3, 4), torch.randn(3, 8)
    torch.testing.assert_close(G(x, s), rG(x, s))
    torch.testing.assert_close(M(z, y), rM(z, y))
    torch.testing.assert_close(E(x, y), rE(x, y))
    torch.testing.assert_close(D(x, y), rD(x, y))
    assert G(torch.randn(1, 3, 48, 80), s[:1]).shape == (1, 3, 48, 80)  # any multiple of size_multiple
    assert G.size_multiple == 2


@pytest.mark.parametrize("size", [12, 24])
def test_image_sizes_must_be_powers_of_two(size):
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        StyleEncoder(size)


# -- whole training iterations against the reference --------------------------------------------------------------


class SeedBeforeEachBatch(pl.Callback):
    """Seeds torch before each training batch, so that the latent codes the model draws are known."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.manual_seed(100 + batch_idx)


def test_two_training_iterations_equal_the_reference_in_float64():
    """From the same weights and batches, two iterations (ds_iter 4: lambda_ds 1 then 0.75): the same loss terms
    (every one logged) and the same updated generator, mapping network, style encoder and discriminator; the moving
    average is 0.999 x the first iteration's weights + 0.001 x the second's."""
    torch.manual_seed(0)
    ours = StarGANv2(domains=("a", "b", "c"), ds_iter=4, **TINY).double()
    batches = []
    for _ in range(2):
        batches.append(
            {
                "A": torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1,
                "domain": torch.tensor([0, 2]),
                "ref": torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1,
                "ref2": torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1,
                "ref_domain": torch.tensor([1, 1]),
            }
        )
    names = {"generator": "generator", "mapping_network": "mapping", "style_encoder": "style_encoder"}
    nets = {ref: copy.deepcopy(ours.generators[mine]) for ref, mine in names.items()}
    nets["discriminator"] = copy.deepcopy(ours.discriminators["D"])
    optims = {
        name: torch.optim.Adam(
            net.parameters(), lr=1e-6 if name == "mapping_network" else 1e-4, betas=(0.0, 0.99), weight_decay=1e-4
        )
        for name, net in nets.items()
    }

    order = ("generator", "mapping", "style_encoder")

    def weights(model):  # every trained weight, in the reference's order of networks
        nets = [*(model.generators[name] for name in order), model.discriminators["D"]]
        return [p.detach().clone() for net in nets for p in net.parameters()]

    steps = []  # (our logged losses, our weights) after each iteration
    record = type("Record", (pl.Callback,), {"on_train_batch_end": lambda self, tr, m, *a: steps.append(
        (dict(m.step_losses), weights(m)))})  # fmt: skip
    trainer = pl.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[SeedBeforeEachBatch(), record()],
    )  # fmt: skip
    trainer.fit(ours, train_dataloaders=DataLoader(batches, batch_size=None))
    assert ours.global_step == 2

    args = dict(lambda_reg=1.0, lambda_sty=1.0, lambda_ds=1.0, initial_lambda_ds=1.0, ds_iter=4, lambda_cyc=1.0)
    close = functools.partial(torch.testing.assert_close, rtol=1e-9, atol=1e-12)
    for i, batch in enumerate(batches):
        torch.manual_seed(100 + i)
        z, z2 = torch.randn(2, 2, 4, dtype=torch.float64)
        inputs = dict(x_src=batch["A"].clone(), y_src=batch["domain"], x_ref=batch["ref"], x_ref2=batch["ref2"])
        inputs.update(y_ref=batch["ref_domain"], z_trg=z, z_trg2=z2)
        logged = reference_iteration(nets, optims, args, inputs)
        losses, ours_weights = steps[i]
        assert {f"train/{key}" for key in logged} <= set(losses)
        for key, value in logged.items():
            close(losses[f"train/{key}"], value.detach(), msg=f"iteration {i}: {key}")
        reference = [p.detach() for name in (*names, "discriminator") for p in nets[name].parameters()]
        for j, (mine, ref) in enumerate(zip(ours_weights, reference, strict=True)):
            close(mine, ref, msg=f"iteration {i}: weight {j}")
    assert [float(steps[i][0]["train/lambda_ds"]) for i in range(2)] == [1.0, 0.75]
    averages = [p.detach() for name in order for p in ours.ema[name].module.parameters()]
    count_g = len(averages)
    for average, first, second in zip(averages, steps[0][1][:count_g], steps[1][1][:count_g], strict=True):
        close(average, 0.999 * first + 0.001 * second)


# -- the model in the platform ------------------------------------------------------------------------------------

TINY_ARGS = [
    "--model=lit_gan.models.StarGANv2",
    "--model.domains=[photo, cartoon, sketch, night]",
    *(f"--model.{key}={value}" for key, value in TINY.items()),
    "--data.name=synthetic",
    "--data.mode=domains",
    "--data.preprocess=random_resized_crop",
    "--data.load_size=32",
    "--data.crop_size=32",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--data.synthetic.train_size=2",
    "--data.synthetic.test_size=2",
    "--trainer.accelerator=cpu",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.max_epochs=1",
    "--samples.num_images=4",
    "--metrics.feature_extractor=tests.helpers.TinyExtractor",
    "--seed_everything=0",
]


def test_trains_on_the_four_synthetic_styles_with_samples_and_metrics_per_direction(tmp_path, monkeypatch):
    """A fit through the CLI on data mode domains: every loss term logged and finite, a sample grid per target domain
    (the images and three latent-guided translations into it) and a reference-guided one, FID/KID for each of the
    12 source -> target pairs, latent- and reference-guided, and their means as the paper reports them."""
    from tests.helpers import fit

    monkeypatch.chdir(tmp_path)
    cli = fit(TINY_ARGS)
    assert cli.trainer.global_step == 4  # 8 training items (2 per style), batches of 2
    metrics = cli.trainer.callback_metrics
    terms = [f"D_{mode}_{t}" for mode in ("latent", "ref") for t in ("real", "fake", "reg")]
    terms += [f"G_{mode}_{t}" for mode in ("latent", "ref") for t in ("adv", "sty", "ds", "cyc")]
    for key in terms:
        assert torch.isfinite(metrics[f"train/{key}"]), key
    assert torch.isfinite(metrics["val/cycle"]) and 0.0 < float(metrics["train/lambda_ds"]) <= 1.0
    model = cli.model
    assert len(model.directions()) == 12 and "photo_to_night" in model.directions()
    results = next(c for c in cli.trainer.callbacks if type(c).__name__ == "MetricsCallback").results
    per_pair = [results[f"val/fid_{d}_{guide}"] for guide in ("latent", "ref") for d in model.directions()]
    assert results["val/fid_latent"] == pytest.approx(sum(per_pair[:12]) / 12)
    assert results["val/fid_ref"] == pytest.approx(sum(per_pair[12:]) / 12)
    assert results["val/fid"] == pytest.approx(sum(per_pair) / 24)
    assert results["val/fid_latent"] != results["val/fid_ref"]
    grids = sorted(p.name for p in tmp_path.glob("runs/lit_gan/*/samples/*.png"))
    last = [g for g in grids if g.startswith("step_0000004")]
    assert last == [f"step_0000004_{d}.png" for d in sorted([*model.domains, "reference"])]
    # the reference grid: a first row of the 4 references, then 4 rows of image | 4 translations
    grid = Image.open(next(tmp_path.glob("runs/lit_gan/*/samples/step_0000004_reference.png")))
    assert grid.size == (5 * 32 + 6 * 2, 5 * 32 + 6 * 2)
    # the same latent codes at every call: samples and metrics are comparable from one evaluation to the next
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(model.generate("photo_to_night", x), model.generate("photo_to_night", x))


# -- metrics, predict and export with style codes -------------------------------------------------------------------


def test_lpips_diversity_is_the_mean_lpips_between_two_latent_codes_per_image(tmp_path, monkeypatch):
    """With LPIPS on, each latent-guided direction logs the LPIPS between every held-out image's translations with
    latent codes i and N + i (N held-out images), as the paper's diversity; the mean over directions is
    val/lpips_diversity, a higher-is-better key."""
    from lit_gan.callbacks import MetricsCallback
    from lit_gan.metric_keys import goal
    from lit_gan.metrics import similarity
    from tests.callbacks.test_metrics import MeanAbsoluteLpips
    from tests.helpers import TinyExtractor, fit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(similarity, "load_lpips", lambda net: MeanAbsoluteLpips())
    cli = fit([*TINY_ARGS, "--trainer.max_steps=2", "--metrics.enabled=false"])
    model = cli.model.eval()
    results = MetricsCallback(feature_extractor=TinyExtractor(), lpips=True, batch_size=3).evaluate(cli.trainer, model)
    images, _ = cli.datamodule.held_out_images("photo")
    x = torch.stack([images[i]["A"] for i in range(len(images))])
    index = torch.arange(len(x))
    with torch.no_grad():
        first = model.generate_guided("photo_to_night", x, "latent", index)
        second = model.generate_guided("photo_to_night", x, "latent", index + len(x))
    expected = float(similarity.lpips(MeanAbsoluteLpips(), first, second).double().mean())
    assert results["val/lpips_diversity_photo_to_night_latent"] == pytest.approx(expected, rel=1e-5)
    assert "val/lpips_diversity_photo_to_night_ref" not in results  # one reference per image: nothing to compare
    per_pair = [results[f"val/lpips_diversity_{d}_latent"] for d in model.directions()]
    assert results["val/lpips_diversity"] == pytest.approx(sum(per_pair) / 12) and expected > 0
    assert goal("val/lpips_diversity") == "maximize" and goal("val/lpips_diversity_photo_to_night_latent") == "maximize"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The run folder of a tiny StarGAN v2 trained for 2 steps through the CLI on the four synthetic styles."""
    from tests.helpers import fit

    tmp = tmp_path_factory.mktemp("stargan_v2")
    quick = ["--trainer.logger=false", "--metrics.enabled=false", "--best_checkpoint.save_top_k=0"]
    fit([*TINY_ARGS, "--trainer.max_steps=2", f"--trainer.default_root_dir={tmp / 'run'}", *quick])
    return tmp / "run"


def predicted(run, out, *extra):
    from lit_gan.cli import main

    ckpt = run / "checkpoints" / "last.ckpt"
    main(["predict", f"--config={run / 'config.yaml'}", f"--ckpt_path={ckpt}", f"--predict_writer.output_dir={out}",
          *extra])  # fmt: skip
    return {p.relative_to(out).as_posix(): p for p in out.rglob("*.png")}


def as_uint8(image: torch.Tensor) -> torch.Tensor:
    return ((image.clamp(-1, 1) + 1) * 127.5).round().byte()


def test_predict_applies_a_reference_images_style_or_a_seeds_to_a_folder_of_any_size(trained_run, tmp_path):
    from tests.helpers import write_images

    photos = write_images(tmp_path / "photos", 2, size=40)  # 40 px: not the training size
    (reference,) = write_images(tmp_path / "refs", 1, size=48, seed=7)
    model = StarGANv2.load_from_checkpoint(trained_run / "checkpoints" / "last.ckpt").eval()
    x = torch.stack([TF.to_tensor(Image.open(p).convert("RGB")) * 2 - 1 for p in photos])  # (2, 3, 40, 40)
    night = model.domains.index("night")

    out = tmp_path / "by_reference"
    files = predicted(trained_run, out, f"--data.predict.path={tmp_path / 'photos'}", "--model.predict_target=night",
                      f"--model.predict_reference={reference}")  # fmt: skip
    assert sorted(files) == [p.name for p in photos]  # one target: the inputs' names
    ref = TF.to_tensor(Image.open(reference).convert("RGB").resize((32, 32), Image.BILINEAR))[None] * 2 - 1
    G = model.translator("generator")  # the moving average
    with torch.no_grad():
        expected = G(x, model.reference_codes(night, ref).expand(2, -1))
        latent = G(x, model.latent_codes(night, torch.tensor([5])).expand(2, -1))
    for i, photo in enumerate(photos):
        written = torch.from_numpy(np.asarray(Image.open(files[photo.name]))).permute(2, 0, 1)
        assert (written.int() - as_uint8(expected[i]).int()).abs().max() <= 1  # rounding
        assert (written.int() - as_uint8(latent[i]).int()).abs().max() > 1  # the reference's style, not a seed's

    out = tmp_path / "by_seed"
    files = predicted(trained_run, out, f"--data.predict.path={tmp_path / 'photos'}", "--model.predict_seed=5")
    assert sorted(files) == sorted(f"to_{d}/{p.name}" for d in model.domains for p in photos)  # every domain
    written = torch.from_numpy(np.asarray(Image.open(files[f"to_night/{photos[0].name}"]))).permute(2, 0, 1)
    assert (written.int() - as_uint8(latent[0]).int()).abs().max() <= 1


def test_predict_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"model.predict_target 'winter' is not one of model.domains"):
        StarGANv2(domains=("a", "b"), predict_target="winter", **TINY)
    with pytest.raises(FileNotFoundError, match=r"model.predict_reference .*missing.png not found"):
        StarGANv2(domains=("a", "b"), predict_reference=str(tmp_path / "missing.png"), **TINY)


def test_export_writes_the_generator_with_an_image_and_a_style_code_input(trained_run, tmp_path):
    """One exported generator serves every domain: fed the model's latent code of a domain, it gives the model's
    translation into that domain; fed a style encoder's code, the reference-guided one."""
    from lit_gan.export import export_generator

    report = export_generator(trained_run / "checkpoints" / "last.ckpt", tmp_path / "out", formats=["pt2"])
    assert [p.name for p in report.files] == ["generator.pt2"] and report.ok
    assert "(B, 3, H, W) images and (B, 8) style codes" in report.signatures["generator"]
    exported = torch.export.load(tmp_path / "out" / "generator.pt2").module()
    model = StarGANv2.load_from_checkpoint(trained_run / "checkpoints" / "last.ckpt").eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        codes = model.latent_codes(model.domains.index("sketch"), torch.zeros(3, dtype=torch.long))
        torch.testing.assert_close(exported(x, codes), model.generate("photo_to_sketch", x), atol=1e-4, rtol=0)
        codes = model.reference_codes(model.domains.index("cartoon"), x.flip(0))
        guided = model.generate_guided("photo_to_cartoon", x, "ref", torch.zeros(3, dtype=torch.long), x.flip(0))
        torch.testing.assert_close(exported(x, codes), guided, atol=1e-4, rtol=0)


def test_the_residual_generator_starts_as_the_identity_and_learns_a_change():
    """`residual`: the model's generator (after its He initialization) returns the image whatever the style code;
    its output convolution then gets a gradient, and one step makes the style code matter."""
    torch.manual_seed(0)
    model = StarGANv2(domains=("a", "b"), residual=True, **TINY)
    G, x = model.G, torch.rand(2, 3, 32, 32) * 2 - 1
    s1, s2 = torch.randn(2, 2, 8)
    assert torch.equal(G(x, s1), x) and torch.equal(G(x, s2), x)
    (G(x, s1) - 0.5).square().mean().backward()
    assert G.to_rgb[-1].weight.grad.abs().sum() > 0
    torch.optim.SGD(G.parameters(), lr=0.1).step()
    with torch.no_grad():
        assert not torch.allclose(G(x, s1), G(x, s2))
    assert not StarGANv2(domains=("a", "b"), **TINY).G.residual  # the reference's generator by default
