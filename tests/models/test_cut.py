"""CUT/FastCUT against a condensed retyped copy of the reference code (taesungp/contrastive-unpaired-translation,
models/networks.py, models/patchnce.py and models/cut_model.py): parameter counts, and one whole training step."""

import functools

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lit_gan.models import CUT
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator
from lit_gan.networks.antialias import Downsample, Upsample
from lit_gan.networks.patch_sampler import PatchSampler
from tests.helpers import batches_per_epoch, fit, tiny_args

# -- the reference, condensed but unchanged in what it computes ---------------------------------------------------


def get_filter(filt_size):
    a = np.array({3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[filt_size])
    filt = torch.Tensor(a[:, None] * a[None, :])
    return filt / torch.sum(filt)


class RefDownsample(nn.Module):
    def __init__(self, channels, filt_size=3, stride=2):
        super().__init__()
        self.stride = stride
        p = [int(1.0 * (filt_size - 1) / 2), int(np.ceil(1.0 * (filt_size - 1) / 2))] * 2
        self.register_buffer("filt", get_filter(filt_size)[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReflectionPad2d(p)

    def forward(self, inp):
        return F.conv2d(self.pad(inp), self.filt, stride=self.stride, groups=inp.shape[1])


class RefUpsample(nn.Module):
    def __init__(self, channels, filt_size=4, stride=2):
        super().__init__()
        self.filt_odd, self.pad_size, self.stride = filt_size % 2 == 1, int((filt_size - 1) / 2), stride
        filt = get_filter(filt_size) * (stride**2)
        self.register_buffer("filt", filt[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])

    def forward(self, inp):
        ret = F.conv_transpose2d(self.pad(inp), self.filt, stride=self.stride, padding=1 + self.pad_size,
                                 groups=inp.shape[1])[:, :, 1:, 1:]  # fmt: skip
        return ret if self.filt_odd else ret[:, :, :-1, :-1]


NORM = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class RefResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), NORM(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), NORM(dim),
        )  # fmt: skip

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    """The reference ResnetGenerator with anti-aliasing (its default), instance norm, no dropout."""

    def __init__(self, input_nc, output_nc, ngf=64, n_blocks=9):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=True), NORM(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=1, padding=1, bias=True),
                      NORM(ngf * mult * 2), nn.ReLU(True), RefDownsample(ngf * mult * 2)]  # fmt: skip
        model += [RefResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [RefUpsample(ngf * mult), nn.Conv2d(ngf * mult, int(ngf * mult / 2), 3, stride=1, padding=1,
                      bias=True), NORM(int(ngf * mult / 2)), nn.ReLU(True)]  # fmt: skip
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input, layers=(), encode_only=False):
        if len(layers) > 0:
            feat, feats = input, []
            for layer_id, layer in enumerate(self.model):
                feat = layer(feat)
                if layer_id in layers:
                    feats.append(feat)
                if layer_id == layers[-1] and encode_only:
                    return feats
            return feat, feats
        return self.model(input)


class RefNLayerDiscriminator(nn.Module):
    """The reference NLayerDiscriminator with anti-aliasing, instance norm."""

    def __init__(self, input_nc, ndf=64, n_layers=3):
        super().__init__()
        seq = [nn.Conv2d(input_nc, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True), RefDownsample(ndf)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=True),
                    NORM(ndf * nf_mult), nn.LeakyReLU(0.2, True), RefDownsample(ndf * nf_mult)]  # fmt: skip
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=True),
                NORM(ndf * nf_mult), nn.LeakyReLU(0.2, True)]  # fmt: skip
        seq += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, input):
        return self.model(input)


class RefPatchSampleF(nn.Module):
    """The reference PatchSampleF ("mlp_sample"). `drawn` replays the patch ids that torch.randperm drew in our run
    (both sides draw them at random, so the comparison needs the same draws)."""

    def __init__(self, nc, drawn):
        super().__init__()
        self.nc, self.mlp_init, self.drawn = nc, False, drawn

    def create_mlp(self, feats):
        for mlp_id, feat in enumerate(feats):
            mlp = nn.Sequential(nn.Linear(feat.shape[1], self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc))
            setattr(self, f"mlp_{mlp_id}", mlp)
        self.mlp_init = True

    def forward(self, feats, num_patches=64, patch_ids=None):
        return_ids, return_feats = [], []
        if not self.mlp_init:
            self.create_mlp(feats)
        for feat_id, feat in enumerate(feats):
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[feat_id]
            else:
                patch_id = self.drawn.pop(0) if self.drawn is not None else torch.randperm(feat_reshape.shape[1])
                patch_id = patch_id[: int(min(num_patches, patch_id.shape[0]))]
            x_sample = feat_reshape[:, patch_id, :].flatten(0, 1)
            x_sample = getattr(self, f"mlp_{feat_id}")(x_sample)
            return_ids.append(patch_id)
            norm = x_sample.pow(2).sum(1, keepdim=True).pow(1.0 / 2)
            return_feats.append(x_sample.div(norm + 1e-7))
        return return_feats, return_ids


def ref_patch_nce(feat_q, feat_k, batch_size, nce_T, all_negatives_from_minibatch):
    """The reference PatchNCELoss.forward."""
    num_patches, dim = feat_q.shape[0], feat_q.shape[1]
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(num_patches, 1, -1), feat_k.view(num_patches, -1, 1)).view(num_patches, 1)
    batch_dim_for_bmm = 1 if all_negatives_from_minibatch else batch_size
    feat_q, feat_k = feat_q.view(batch_dim_for_bmm, -1, dim), feat_k.view(batch_dim_for_bmm, -1, dim)
    npatches = feat_q.size(1)
    l_neg_curbatch = torch.bmm(feat_q, feat_k.transpose(2, 1))
    diagonal = torch.eye(npatches, device=feat_q.device, dtype=torch.bool)[None, :, :]
    l_neg_curbatch.masked_fill_(diagonal, -10.0)
    out = torch.cat((l_pos, l_neg_curbatch.view(-1, npatches)), dim=1) / nce_T
    return nn.CrossEntropyLoss(reduction="none")(out, torch.zeros(out.size(0), dtype=torch.long))


class RefCUT:
    """The reference CUTModel's training step (optimize_parameters), LSGAN, with its three Adams."""

    def __init__(self, netG, netD, netF, opt):
        self.netG, self.netD, self.netF, self.opt = netG, netD, netF, opt
        self.nce_layers = opt["nce_layers"]

    def make_optimizers(self):
        betas = (0.5, 0.999)
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=betas)
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=betas)
        self.optimizer_F = torch.optim.Adam(self.netF.parameters(), lr=2e-4, betas=betas)

    def criterionGAN(self, prediction, target_is_real):
        return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))

    def forward(self, flipped):
        self.real = torch.cat((self.real_A, self.real_B), dim=0) if self.opt["nce_idt"] else self.real_A
        self.flipped_for_equivariance = flipped  # the reference: np.random.random() < 0.5 when flip_equivariance
        if self.opt["flip_equivariance"] and self.flipped_for_equivariance:
            self.real = torch.flip(self.real, [3])
        self.fake = self.netG(self.real)
        self.fake_B = self.fake[: self.real_A.size(0)]
        if self.opt["nce_idt"]:
            self.idt_B = self.fake[self.real_A.size(0) :]

    def set_requires_grad(self, net, requires_grad):
        for param in net.parameters():
            param.requires_grad = requires_grad

    def optimize_parameters(self, flipped):
        self.forward(flipped)
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        self.loss_D = self.compute_D_loss()
        self.loss_D.backward()
        self.optimizer_D.step()
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        self.optimizer_F.zero_grad()
        self.loss_G = self.compute_G_loss()
        self.loss_G.backward()
        self.optimizer_G.step()
        self.optimizer_F.step()

    def compute_D_loss(self):
        self.loss_D_fake = self.criterionGAN(self.netD(self.fake_B.detach()), False).mean()
        self.loss_D_real = self.criterionGAN(self.netD(self.real_B), True).mean()
        return (self.loss_D_fake + self.loss_D_real) * 0.5

    def compute_G_loss(self):
        self.loss_G_GAN = self.criterionGAN(self.netD(self.fake_B), True).mean() * self.opt["lambda_GAN"]
        self.loss_NCE = self.calculate_NCE_loss(self.real_A, self.fake_B)
        if self.opt["nce_idt"]:
            self.loss_NCE_Y = self.calculate_NCE_loss(self.real_B, self.idt_B)
            loss_NCE_both = (self.loss_NCE + self.loss_NCE_Y) * 0.5
        else:
            loss_NCE_both = self.loss_NCE
        return self.loss_G_GAN + loss_NCE_both

    def calculate_NCE_loss(self, src, tgt):
        o = self.opt
        feat_q = self.netG(tgt, self.nce_layers, encode_only=True)
        if o["flip_equivariance"] and self.flipped_for_equivariance:
            feat_q = [torch.flip(fq, [3]) for fq in feat_q]
        feat_k = self.netG(src, self.nce_layers, encode_only=True)
        feat_k_pool, sample_ids = self.netF(feat_k, o["num_patches"], None)
        feat_q_pool, _ = self.netF(feat_q, o["num_patches"], sample_ids)
        total_nce_loss = 0.0
        for f_q, f_k in zip(feat_q_pool, feat_k_pool):
            loss = ref_patch_nce(f_q, f_k, o["batch_size"], o["nce_T"], o["all_negatives"]) * o["lambda_NCE"]
            total_nce_loss += loss.mean()
        return total_nce_loss / len(self.nce_layers)


# -- parameter counts ---------------------------------------------------------------------------------------------


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_reference_at_its_defaults():
    """Reference defaults: resnet_9blocks, ngf/ndf 64, instance norm, anti-aliased, netF mlp_sample with 256 channels
    on nce_layers 0,4,8,12,16. The figures were measured from the reference code (shared FACTS.md: G 11,378,179,
    D 2,764,737, F 560,384 = 66,816 + 98,816 + 3 x 131,584 for feature channels 3, 128, 256, 256, 256); the
    retyped reference built here gives them too."""
    model = CUT()
    G, D, F_ = model.generators["AtoB"], model.discriminators["B"], model.sampler
    assert (count(G), count(D), count(F_)) == (11_378_179, 2_764_737, 560_384)
    assert [count(mlp) for mlp in F_.mlps] == [66_816, 98_816, 131_584, 131_584, 131_584]
    ref_G, ref_D = RefResnetGenerator(3, 3), RefNLayerDiscriminator(3)
    ref_F = RefPatchSampleF(256, None)
    ref_F(ref_G(torch.zeros(1, 3, 32, 32), [0, 4, 8, 12, 16], encode_only=True), 4)  # builds its MLPs lazily
    assert (count(ref_G), count(ref_D), count(ref_F)) == (count(G), count(D), count(F_))
    assert [p.shape for p in ref_G.parameters()] == [p.shape for p in G.parameters()]
    assert [p.shape for p in ref_D.parameters()] == [p.shape for p in D.parameters()]


def test_antialiased_resampling_equals_the_reference_filters():
    x = torch.randn(2, 5, 12, 10)
    torch.testing.assert_close(Downsample(5)(x), RefDownsample(5)(x))
    torch.testing.assert_close(Upsample(5)(x), RefUpsample(5)(x))
    assert Upsample(5)(x).shape[-2:] == (24, 20) and Downsample(5)(x).shape[-2:] == (6, 5)


# -- one training step against the reference ----------------------------------------------------------------------

VARIANTS = {  # CUT, FastCUT (flip drawn both ways) and the single-image setting (negatives from the whole minibatch)
    "cut": dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, negatives_from_minibatch=False),
    "fastcut_flipped": dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, negatives_from_minibatch=False),
    "fastcut_unflipped": dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, negatives_from_minibatch=False),
    "single_image": dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, negatives_from_minibatch=True),
    # every weight away from its default, so that an ignored or swapped one shows
    "custom": dict(
        nce_idt=True,
        lambda_NCE=2.5,
        flip_equivariance=False,
        negatives_from_minibatch=False,
        nce_T=0.2,
        lambda_GAN=0.3,
        num_patches=16,
    ),
}
DEFAULTS = {"nce_T": 0.07, "lambda_GAN": 1.0, "num_patches": 24}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_one_training_step_equals_the_reference(variant, monkeypatch):
    """From the same weights and batch: the same D, G_GAN and NCE losses and the same updated G, D and sampler."""
    settings = {**DEFAULTS, **VARIANTS[variant]}
    flipped = variant == "fastcut_flipped"
    torch.manual_seed(0)
    layers = (0, 4, 8, 12, 16)
    ours = CUT(
        generator=ResnetGenerator(ngf=4, n_blocks=5, antialias=True),
        discriminator=PatchGANDiscriminator(ndf=4, n_layers=3, antialias=True),
        sampler=PatchSampler(channels=16),
        nce_layers=layers,
        **settings,
    )
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}

    ref_G, ref_D = RefResnetGenerator(3, 3, ngf=4, n_blocks=5), RefNLayerDiscriminator(3, ndf=4)
    ref_F = RefPatchSampleF(16, drawn=None)
    ref_F(ref_G(batch["A"], list(layers), encode_only=True), settings["num_patches"])  # data-dependent initialize
    pairs = [(ref_G, ours.generators["AtoB"]), (ref_D, ours.discriminators["B"]), (ref_F, ours.sampler)]
    with torch.no_grad():
        for ref, mine in pairs:
            for p_ref, p_ours in zip(ref.parameters(), mine.parameters(), strict=True):
                p_ref.copy_(p_ours)
    initial_weights = [[p.detach().clone() for p in mine.parameters()] for _, mine in pairs]

    drawn = []  # the patch locations our sampler draws, replayed on the reference's side
    sample = ours.sampler.forward

    def recording(feats, num_patches, patch_ids=None, generator=None):
        out, ids = sample(feats, num_patches, patch_ids, generator)
        if patch_ids is None:
            drawn.extend(ids)
        return out, ids

    monkeypatch.setattr(ours.sampler, "forward", recording)
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(0.25 if flipped else 0.75))  # the flip's draw
    trainer = pl.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(ours, train_dataloaders=DataLoader([batch], batch_size=None))
    monkeypatch.undo()

    ref_F.drawn = drawn
    opt = dict(settings, nce_layers=list(layers), batch_size=2)
    opt["all_negatives"] = opt.pop("negatives_from_minibatch")
    ref = RefCUT(ref_G, ref_D, ref_F, opt)
    ref.make_optimizers()
    ref.real_A, ref.real_B = batch["A"], batch["B"]
    ref.optimize_parameters(flipped)

    losses = ours.step_losses
    close = functools.partial(torch.testing.assert_close, rtol=1e-5, atol=1e-6)
    close(losses["train/D"], ref.loss_D.detach())
    close(losses["train/G_GAN"], ref.loss_G_GAN.detach())
    close(losses["train/NCE"], ref.loss_NCE.detach())
    if settings["nce_idt"]:
        close(losses["train/NCE_Y"], ref.loss_NCE_Y.detach())
    assert not drawn  # every draw was replayed
    for (ref_net, mine), initial in zip(pairs, initial_weights, strict=True):
        # Gradients (each side keeps its last one after its step), to float rounding relative to the network's largest
        # gradient: float32 sums in another order differ by ~1e-6 of that. Then the updated weights: Adam's first step
        # is lr * sign(gradient), so they are equal wherever a gradient stands out of the rounding; a convolution bias
        # followed by instance norm has gradient 0 up to rounding, which either side may turn into +-lr.
        scale = max(float(p.grad.abs().max()) for p in ref_net.parameters())
        for p_ref, p_ours, p_initial in zip(ref_net.parameters(), mine.parameters(), initial, strict=True):
            close(p_ours.grad, p_ref.grad, rtol=1e-3, atol=1e-5 * scale)
            signal = p_ref.grad.abs() > 1e-4 * scale
            close(p_ours.detach()[signal], p_ref.detach()[signal])
            # and the step was Adam's first at lr 2e-4: lr * g / (|g| + eps), i.e. nearly lr, where g stands out
            moved = (p_ours.detach() - p_initial)[signal].abs()
            assert ((moved > 0.5 * 2e-4) & (moved < 2e-4 * (1 + 1e-5))).all()


# -- the model in the platform ------------------------------------------------------------------------------------


def test_trains_logs_and_evaluates_on_held_out_data():
    cli = fit(tiny_args("--trainer.max_epochs=1", batches_per_epoch("cut", 2), model="cut"))
    metrics = cli.trainer.callback_metrics
    for key in ("train/G_GAN", "train/NCE", "train/NCE_Y", "train/D", "val/nce", "val/idt"):
        assert torch.isfinite(metrics[key]), key
    assert cli.trainer.global_step == 2


def test_fastcut_has_no_identity_term_and_negatives_can_span_the_minibatch():
    args = ["--trainer.max_steps=1", "--model.nce_idt=false", "--model.flip_equivariance=true"]
    cli = fit(tiny_args(*args, "--model.negatives_from_minibatch=true", "--data.batch_size=2", model="cut"))
    assert "train/NCE_Y" not in cli.model.step_losses and torch.isfinite(cli.model.step_losses["train/NCE"])


def test_nce_layers_must_exist_in_the_generator():
    with pytest.raises(ValueError, match=r"model.nce_layers \[0, 4, 99\]: the generator has layers 0 to"):
        CUT(generator=ResnetGenerator(ngf=4, n_blocks=1, antialias=True), nce_layers=(0, 4, 99))
    with pytest.raises(ValueError, match="ascending"):
        CUT(generator=ResnetGenerator(ngf=4, n_blocks=1, antialias=True), nce_layers=(4, 0))


def test_generator_without_features_is_refused():
    from lit_gan.networks import UnetGenerator

    with pytest.raises(ValueError, match=r"model.generator: CUT .* features\(x, layers\)"):
        CUT(generator=UnetGenerator(num_downs=5, ngf=4))


def test_sampler_is_built_with_the_model_trained_with_the_generator_and_checkpointed():
    model = CUT(generator=ResnetGenerator(ngf=4, n_blocks=1, antialias=True), nce_layers=(0, 4, 8, 12))
    assert model.sampler.in_channels == (3, 8, 16, 16)
    assert any(k.startswith("sampler.mlps.0") for k in model.state_dict())
    trained = {id(p) for p in model.generator_parameters()}
    assert all(id(p) in trained for p in [*model.sampler.parameters(), *model.generators.parameters()])


def test_a_location_whose_features_are_all_zero_gives_finite_gradients():
    """Dead ReLUs of a narrow generator can zero every channel of a location; with zero MLP biases (the reference's
    init) its embedding is the zero vector, whose norm's gradient was NaN (sqrt at 0) and made every weight NaN."""
    sampler = PatchSampler(channels=8).build([4])
    for layer in sampler.mlps[0]:
        if isinstance(layer, nn.Linear):
            nn.init.zeros_(layer.bias)
    feat = torch.randn(2, 4, 3, 3)
    feat[:, :, 1, 1] = 0  # (B, C, H, W) with one all-zero location
    feat.requires_grad_(True)
    (embedded,), _ = sampler([feat], num_patches=9)
    assert torch.allclose(embedded.norm(dim=1).sort().values[2:], torch.ones(16), atol=1e-5)  # unit norm elsewhere
    embedded.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in sampler.parameters()) and torch.isfinite(feat.grad).all()
