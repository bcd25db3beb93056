"""StarGAN v2 (Choi, Uh, Yoo, Ha, "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020): many styles
in one model. One generator applies a 64-number style code to any image through AdaIN; the code comes from a mapping
network (noise -> a style of a chosen domain) or from a style encoder (a reference image -> its style)."""

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn

from lit_gan.contracts import Direction
from lit_gan.losses.gan import r1_from_scores
from lit_gan.models.base import GANModule, SmokeTest
from lit_gan.models.defaults import model_defaults
from lit_gan.models.schedules import LRPolicy
from lit_gan.networks.shapes import crop_padding
from lit_gan.networks.stargan_v2 import (
    MappingNetwork,
    MultiTaskDiscriminator,
    StarGANv2Generator,
    StyleEncoder,
    domain_state,
)
from lit_gan.runs import checkpoint_summary, read_checkpoint
from lit_gan.styles import (
    DEFAULT_BANK,
    blended_code,
    fingerprint,
    image_tensor,
    parse_blend,
    read_style,
    style_path,
    with_strength,
)


class StarGANv2Adam(torch.optim.Adam):
    """`torch.optim.Adam` with the StarGAN v2 reference's settings: lr 1e-4, betas (0, 0.99), weight decay 1e-4 (L2,
    added to the gradient, as torch's Adam)."""

    def __init__(
        self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.0, 0.99), weight_decay: float = 1e-4, **kwargs
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay, **kwargs)


@model_defaults(
    lr=1e-4, optimizer_G=StarGANv2Adam, optimizer_D=StarGANv2Adam, ema_decay=0.999, r1_gamma=1.0, init_type="kaiming"
)
class StarGANv2(GANModule):
    """A generator ("generator"), a mapping network ("mapping"), a style encoder ("style_encoder") and a multi-task
    discriminator ("D"), for the domains `domains` (their order is the label of each).

    Training follows the reference code (core/solver.py, `Solver.train`). Each iteration draws two latent codes per
    image and takes, in this order:

    1. a discriminator step with latent codes: non-saturating loss on the real images (of their own domain) and on
       their translations to the reference images' domain with the mapping network's style of the first latent
       code, plus R1 on the real images (`r1_gamma`, the reference's lambda_reg 1);
    2. the same with the style encoder's code of the first reference image;
    3. a step of the generator, the mapping network and the style encoder with latent codes: adversarial
       + `lambda_sty` * style reconstruction (L1 between the target code and the style encoder's code of the
       translation) - `lambda_ds` * diversity (L1 between the translations of the two codes, the second detached)
       + `lambda_cyc` * cycle (L1 between the image and the translation translated back with the style encoder's code
       of the image);
    4. the same with the two reference images, stepping the generator only.

    `lambda_ds` decays linearly to 0 over the first `ds_iter` iterations. Adam (`StarGANv2Adam`: betas (0, 0.99),
    weight decay 1e-4) at `lr` 1e-4 for every network but the mapping network (`lr_mapping` 1e-6). The generator,
    mapping network and style encoder are averaged (`ema_decay` 0.999) for samples, metrics, predict and export.
    Differences from the reference: the moving average starts at the first step's weights (the reference's starts
    from PyTorch's default initialization, copied before its He initialization, which fades as 0.999^t); the
    face-landmark high-pass branch (`w_hpf`, CelebA-HQ) is not implemented (the reference's AFHQ setting has it off).

    `global_step` counts iterations (step 4 is counted; the optimizer step of 3 and those of 1 and 2 are not).
    Logged: `train/D_latent_real`, `_fake`, `_reg` and `D_ref_*`; `train/G_latent_adv`, `_sty`, `_ds`, `_cyc` and
    `G_ref_*`; `train/lambda_ds`.

    Batches hold "A" (B, 3, H, W) and "domain" (B,) (the source images and their domain indices), and "ref",
    "ref2" (two images of one domain per sample) and "ref_domain" (its index), as the reference's loaders draw them
    (`lit_gan.data`'s mode "domains").

    Args:
        domains: the domain names, in label order (`root/train/<domain>` folders, sorted).
        image_size: the training image size (a power of two): sets the networks' depth and, with `channels` null,
            their width.
        style_dim: length of a style code.
        latent_dim: length of the mapping network's latent code.
        hidden_dim: width of the mapping network.
        max_conv_dim: channel cap of the convolutional networks.
        channels: channels after the first convolution of the convolutional networks; null: the reference's
            2**14 // image_size (64 at 256 px).
        lambda_sty: weight of the style reconstruction loss.
        lambda_ds: initial weight of the diversity-sensitive loss.
        ds_iter: iterations over which `lambda_ds` decays linearly to 0.
        lambda_cyc: weight of the cycle-consistency loss.
        lr_mapping: learning rate of the mapping network (the reference's f_lr).
        residual: the generator outputs its input plus a learnt change, starting as the identity (not in the
            reference; see `StarGANv2Generator`): for short runs, which then keep each image's layout from the start.
        warm_start: a checkpoint of a trained StarGANv2 (same networks) whose domains are among `domains`, e.g. all
            but a new style: a fresh fit (not a resume) starts from its weights and moving averages, each domain's
            heads (mapping network, style encoder, discriminator) from the domain of the same name, a new domain's
            from `warm_start_from`'s; the optimizers start afresh. `configs/presets/add_style.yaml`.
        warm_start_from: the warm-start checkpoint's domain whose heads a new domain starts from; null: its first.
        predict_target: the domain `predict` translates into (its outputs go to `<output_dir>/to_<domain>/` when
            several); null: every domain.
        predict_reference: `predict` applies the style of this image (an image file, read by the style encoder at
            `image_size`, as a reference of each target domain); null: a latent code's style.
        predict_seed: the number of the latent code `predict` applies without `predict_reference` (a seed: the same
            style on every call and machine).
        predict_style: `predict` applies this stored style (`lit_gan.styles`): a name in `predict_bank`, a style
            file, or a blend "night:0.7,sketch:0.3" (weights scaled to sum to 1); made with this model, or refused.
        predict_bank: the folder of the stored styles that `predict_style` names.
        predict_strength: how much of the style `predict` applies: the code moves linearly from each image's own
            code (0: the image's reconstruction) to the style's (1); values above 1 extrapolate.
        predict_source: the domain of the images `predict` reads, whose style-encoder head gives their own code for
            `predict_strength` below 1; null: the first domain.

    From the command line, `predict --style NAME`, `--style_image FILE`, `--strength S`, `--target DOMAIN` and
    `--source DOMAIN` stand for `--model.predict_style`, `_reference`, `_strength`, `_target` and `_source`.
    """

    default_lr_policy = LRPolicy("constant")  # the reference keeps its learning rates
    smoke_test = SmokeTest(
        model={
            "domains": ["photo", "cartoon", "sketch", "night"],  # the synthetic styles
            "image_size": 32, "style_dim": 8, "latent_dim": 4, "hidden_dim": 16, "max_conv_dim": 16, "channels": 4,
        },
        data={"mode": "domains", "batch_size": 4},
    )  # fmt: skip

    def __init__(
        self,
        domains: tuple[str, ...] = ("cat", "dog", "wild"),
        image_size: int = 256,
        style_dim: int = 64,
        latent_dim: int = 16,
        hidden_dim: int = 512,
        max_conv_dim: int = 512,
        channels: int | None = None,
        lambda_sty: float = 1.0,
        lambda_ds: float = 1.0,
        ds_iter: int = 100_000,
        lambda_cyc: float = 1.0,
        lr_mapping: float = 1e-6,
        residual: bool = False,
        warm_start: str | None = None,
        warm_start_from: str | None = None,
        predict_target: str | None = None,
        predict_reference: str | None = None,
        predict_seed: int = 0,
        predict_style: str | None = None,
        predict_bank: str = DEFAULT_BANK,
        predict_strength: float = 1.0,
        predict_source: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        names = list(domains)
        if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"model.domains must be two or more distinct domain names, got {names}")
        if ds_iter < 1:
            raise ValueError(f"model.ds_iter must be >= 1, got {ds_iter}")
        self.domains, self.image_size = names, image_size  # crop_size must equal image_size (style encoder, D)
        if warm_start is not None and not Path(warm_start).is_file():
            raise FileNotFoundError(f"model.warm_start {warm_start} not found: give a StarGANv2 checkpoint")
        for key, value in (("predict_target", predict_target), ("predict_source", predict_source)):
            if value is not None and value not in names:
                raise ValueError(f"model.{key} {value!r} is not one of model.domains {names}")
        if predict_reference is not None and not Path(predict_reference).is_file():
            raise FileNotFoundError(f"model.predict_reference {predict_reference} not found: give an image file")
        if predict_style is not None:
            if predict_reference is not None:
                raise ValueError("model.predict_style and model.predict_reference both given: apply one style")
            for name, _ in parse_blend(predict_style):  # a malformed request or a missing file fails here
                read_style(style_path(name, predict_bank))
        self.predict_target, self.predict_reference, self.predict_seed = predict_target, predict_reference, predict_seed
        self.predict_style, self.predict_bank = predict_style, predict_bank
        self.predict_strength, self.predict_source = predict_strength, predict_source
        for key in [k for k in self.hparams if k.startswith("predict_")]:  # settings of a predict run, not of the
            self.hparams.pop(key)  # model: a checkpoint's values would override `predict --model.predict_*`
        n = len(names)
        self.add_networks(
            {
                "generator": StarGANv2Generator(image_size, style_dim, max_conv_dim, channels, residual),
                "mapping": MappingNetwork(latent_dim, style_dim, n, hidden_dim),
                "style_encoder": StyleEncoder(image_size, style_dim, n, max_conv_dim, channels),
            },
            {"D": MultiTaskDiscriminator(image_size, n, max_conv_dim, channels)},
        )

    # -- the networks and their moving averages -------------------------------------------------------------------

    @property
    def G(self) -> nn.Module:
        return self.generators["generator"]

    @property
    def D(self) -> nn.Module:
        return self.discriminators["D"]

    def generator_parameters(self) -> list[dict]:
        """What `optimizer_G` trains, as two parameter groups: the generator and the style encoder at `lr`, the mapping
        network at `lr_mapping`. Adam's update is per parameter, so this equals the reference's three optimizers: in
        the reference-guided step the mapping network and the style encoder get no gradient, and Adam skips them (no
        moment update, no weight decay), as the reference steps the generator only."""
        G, M, E = (self.generators[name] for name in ("generator", "mapping", "style_encoder"))
        return [{"params": [*G.parameters(), *E.parameters()]},
                {"params": list(M.parameters()), "lr": self.hparams.lr_mapping}]  # fmt: skip

    def lambda_ds_at(self, iteration: int) -> float:
        """The diversity-sensitive weight of `iteration` (0-based): linear from `lambda_ds` to 0 over `ds_iter`."""
        hp = self.hparams
        return max(0.0, hp.lambda_ds * (1.0 - iteration / hp.ds_iter))

    # -- losses ---------------------------------------------------------------------------------------------------

    @staticmethod
    def adversarial(logits: Tensor, real: bool) -> Tensor:
        """Non-saturating GAN loss: binary cross-entropy of the logits against 1 (real) or 0 (fake)."""
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))

    def discriminator_losses(self, x: Tensor, y: Tensor, y_trg: Tensor, s_trg: Tensor) -> dict[str, Tensor]:
        """D's loss terms on real images `x` of domains `y` and their translations by style codes `s_trg` of domains
        `y_trg`: "real", "fake" and (on R1 iterations) "reg", weighted by r1_gamma."""
        with torch.no_grad():
            fake = self.G(x, s_trg)
        regularize = self.r1_due()
        x = x.detach().requires_grad_(regularize)
        scores = self.D(x, y)  # (B,)
        if self.augment is not None:
            self.augment.observe(scores, 0.0)
        losses = {"real": self.adversarial(scores, True), "fake": self.adversarial(self.D(fake, y_trg), False)}
        if regularize:  # the reference's r1_reg: 0.5 * E||grad||^2, times lambda_reg; from the same forward pass
            losses["reg"] = self.weighted_r1(r1_from_scores(scores, x))
        return losses

    def generator_losses(
        self, x: Tensor, y: Tensor, y_trg: Tensor, s_trg: Tensor, s_trg2: Tensor
    ) -> tuple[dict[str, Tensor], Tensor]:
        """The generator's loss terms ("adv", "sty", "ds", "cyc", unweighted) for translating `x` (domains `y`) with
        style codes `s_trg` (domains `y_trg`), `s_trg2` the second code of the diversity term; and the weighted sum."""
        hp = self.hparams
        fake = self.G(x, s_trg)
        with torch.no_grad():
            fake2 = self.G(x, s_trg2)  # detached, as the reference
        losses = {
            "adv": self.adversarial(self.D(fake, y_trg), True),
            "sty": (self.generators["style_encoder"](fake, y_trg) - s_trg).abs().mean(),
            "ds": (fake - fake2).abs().mean(),
            "cyc": (self.G(fake, self.generators["style_encoder"](x, y)) - x).abs().mean(),
        }
        lambda_ds = self.lambda_ds_at(self._iteration)
        total = losses["adv"] + hp.lambda_sty * losses["sty"] - lambda_ds * losses["ds"] + hp.lambda_cyc * losses["cyc"]
        return losses, total

    # -- the training step ----------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y = batch["A"], batch["domain"]
        x_ref, x_ref2, y_trg = batch["ref"], batch["ref2"], batch["ref_domain"]
        z, z2 = torch.randn(2, x.shape[0], self.hparams.latent_dim, device=x.device, dtype=x.dtype)
        M, E = self.generators["mapping"], self.generators["style_encoder"]
        opt_g, opt_d = self.optimizers()
        logged: dict[str, Tensor] = {}

        for mode, style in (("latent", lambda: M(z, y_trg)), ("ref", lambda: E(x_ref, y_trg))):
            with torch.no_grad():
                s_trg = style()
            d_losses = self.discriminator_losses(x, y, y_trg, s_trg)
            self.step_discriminator(opt_d, sum(d_losses.values()))
            logged.update({f"D_{mode}_{name}": value for name, value in d_losses.items()})

        with self.frozen(self.discriminators):
            g_losses, total = self.generator_losses(x, y, y_trg, M(z, y_trg), M(z2, y_trg))
            self.step_uncounted(opt_g, total)  # generator, mapping network and style encoder
            logged.update({f"G_latent_{name}": value for name, value in g_losses.items()})

            with self.frozen(M), self.frozen(E):  # no gradient: the reference steps the generator only
                g_losses, total = self.generator_losses(x, y, y_trg, E(x_ref, y_trg), E(x_ref2, y_trg))
            self.step_generator(opt_g, total)  # counted; updates the moving averages
            logged.update({f"G_ref_{name}": value for name, value in g_losses.items()})

        lambda_ds = torch.tensor(self.lambda_ds_at(self._iteration))
        self.log_losses({**logged, "lambda_ds": lambda_ds}, batch_size=x.shape[0])

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hparams.get("warm_start") and self.trainer.ckpt_path is None:  # a resume has its own weights
            self.load_warm_start(self.hparams.warm_start, self.hparams.get("warm_start_from"))

    def load_warm_start(self, path: str, start_from: str | None = None) -> None:
        """Load the weights of the StarGANv2 checkpoint `path` (see `warm_start`), read weights-only."""
        checkpoint = read_checkpoint(path)
        old_domains = list((checkpoint.get("hyper_parameters") or {}).get("domains") or [])
        missing = [name for name in old_domains if name not in self.domains]
        if not old_domains or missing:
            raise ValueError(f"model.warm_start {path}: its domains {old_domains} must all be among model.domains "
                             f"{self.domains} (add new ones after them)")  # fmt: skip
        start_from = start_from or old_domains[0]
        if start_from not in old_domains:
            raise ValueError(f"model.warm_start_from {start_from!r} is not a domain of {path}: {old_domains}")
        try:
            state = domain_state(checkpoint["state_dict"], old_domains, self.state_dict(), self.domains, start_from)
        except ValueError as error:
            raise ValueError(f"model.warm_start {path} does not fit this model: {error}") from None
        self.load_state_dict(state)
        new = [name for name in self.domains if name not in old_domains]
        added = f"; new {new}: heads of {start_from!r}" if new else ""
        rank_zero_info(f"Warm start from {path}: domains {old_domains}{added}")

    # -- evaluation, samples and inference ------------------------------------------------------------------------

    GUIDES = ("latent", "ref")

    def latent_codes(self, target: int | Tensor, index: Tensor) -> Tensor:
        """Style codes of domain index `target` (one for all, or (B,) indices) from the (averaged) mapping network,
        code b from the latent code numbered `index[b]` (drawn on the CPU from that seed: the same on every call,
        batch and device)."""
        z = torch.stack(
            [torch.randn(self.hparams.latent_dim, generator=torch.Generator().manual_seed(int(i))) for i in index]
        )
        y = torch.as_tensor(target, dtype=torch.long, device=self.device).expand(len(index))
        return self.translator("mapping")(z.to(self.device, self.dtype), y)

    def reference_codes(self, target: int, reference: Tensor) -> Tensor:
        """Style codes of domain index `target` of the `reference` images, by the (averaged) style encoder."""
        y = torch.full((len(reference),), target, dtype=torch.long, device=reference.device)
        return self.translator("style_encoder")(reference, y)

    def directions(self) -> dict[str, Direction]:
        """Translation between every ordered pair of distinct domains, e.g. "cat_to_dog"."""
        return {f"{s}_to_{t}": Direction(s, t) for s in self.domains for t in self.domains if s != t}

    def translator(self, direction: str) -> nn.Module:
        """The network (averaged when EMA is on) named `direction` ("generator", "mapping", "style_encoder"), or
        for a direction (e.g. "cat_to_dog") the generator."""
        return super().translator("generator" if direction in self.directions() else direction)

    def forward(self, x: Tensor, direction: str | None = None) -> Tensor:
        """`generate`: translations of `x` to `direction`'s target (the first direction's by default)."""
        return self.generate(direction or next(iter(self.directions())), x)

    def generate(self, direction: str, source: Tensor) -> Tensor:
        """Translations of `source` images into `direction`'s target domain, every image with the style of latent
        code 0 (samples, translation tables and predict: one style, the same on every call)."""
        index = torch.zeros(source.shape[0], dtype=torch.long)
        return self.generate_guided(direction, source, "latent", index)

    def guides(self) -> tuple[str, ...]:
        return self.GUIDES

    def generate_guided(
        self, direction: str, source: Tensor, guide: str, index: Tensor, reference: Tensor | None = None
    ) -> Tensor:
        """Translations of `source` into `direction`'s target: latent-guided (`guide` "latent", image b with latent
        code number `index[b]`) or reference-guided ("ref", image b with the style of `reference[b]`)."""
        target = self.domains.index(self.directions()[direction].target)
        if guide == "latent":
            codes = self.latent_codes(target, index)
        elif guide == "ref" and reference is not None:
            codes = self.reference_codes(target, reference)
        else:
            raise ValueError(f"guide must be one of {self.GUIDES} (ref with reference images), got {guide!r}")
        return self.translator("generator")(source, codes)

    def export_names(self) -> list[str]:
        """`export` writes the generator alone, with two inputs: images and style codes (the same network serves every
        direction; the code chooses the style)."""
        return ["generator"]

    # -- predict ----------------------------------------------------------------------------------------------------

    def predict_directions(self, domains: Iterable[str]) -> dict[str, str]:
        """{"to_<target>": source} for each `predict_target` (or every domain), or {"to_style": source} for a stored
        `predict_style`: the generator does not depend on the images' own domain, so images of any domain are
        translated."""
        source = next(iter(domains), "A")
        if self.predict_style is not None:
            return {"to_style": source}
        targets = [self.predict_target] if self.predict_target is not None else self.domains
        return {f"to_{target}": source for target in targets}

    def predict_step(self, batch: dict, batch_idx: int = 0, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """{"to_<target>" or "to_style": (B, C, h, w) translations in [-1, 1]} of the batch's images ("A"), every
        image with the code of `on_predict_start` (at `predict_strength`), cropped back to its own size."""
        if "A" not in batch:
            return {}  # a batch of unreadable files
        x, G = batch["A"], self.translator("generator")
        own = None
        if self.predict_strength != 1:  # (B, style_dim): each image's own code, of its `predict_source` domain
            size = (self.image_size, self.image_size)  # the style encoder's input size
            own = F.interpolate(x, size, mode="bilinear", antialias=True) if x.shape[-2:] != size else x
            own = self.reference_codes(self.domains.index(self.predict_source or self.domains[0]), own)
        outputs = {}
        for name, code in self._predict_codes.items():
            codes = code.expand(len(x), -1) if own is None else with_strength(own, code, self.predict_strength)
            outputs[name] = crop_padding(G(x, codes), batch.get("padding"))
        return outputs

    def on_predict_start(self) -> None:
        """The (1, style_dim) code of each output, once per predict run: the stored style (checked against this
        model) or, per target, the reference image's or the latent code's (the reference is read and encoded once)."""
        super().on_predict_start()
        with torch.no_grad():
            if self.predict_style is not None:
                code = blended_code(self.predict_style, self.identity(), self.predict_bank)
                self._predict_codes = {"to_style": code.to(self.device, self.dtype)[None]}
                return
            self._predict_codes = {
                name: self.target_code(self.domains.index(name.removeprefix("to_")))
                for name in self.predict_directions(["A"])
            }

    def target_code(self, target: int) -> Tensor:
        """The (1, style_dim) code `predict` applies for domain index `target`: the style encoder's code of
        `predict_reference` (resized to `image_size`), else the mapping network's code of latent `predict_seed`."""
        if self.predict_reference is None:
            return self.latent_codes(target, torch.tensor([self.predict_seed]))
        with Image.open(self.predict_reference) as image:
            reference = image_tensor(ImageOps.exif_transpose(image), self.image_size)  # (1, 3, S, S) in [-1, 1]
        return self.reference_codes(target, reference.to(self.device, self.dtype))

    STYLE_NETWORKS = ("generator", "mapping", "style_encoder")

    def identity(self, checkpoint: str | None = None, step: int | None = None) -> dict:
        """Who this model is, for style files (`lit_gan.styles`): its class, the fingerprint of the (averaged)
        generator, mapping network and style encoder, and the checkpoint it was loaded from (`checkpoint`, else the
        trainer's) and its step."""
        trainer = self._trainer
        if checkpoint is None and trainer is not None and trainer.ckpt_path:
            checkpoint = str(trainer.ckpt_path)
            step = checkpoint_summary(Path(checkpoint))["step"]
        return {
            "class": type(self).__name__,
            "fingerprint": fingerprint({name: self.translator(name) for name in self.STYLE_NETWORKS}),
            "checkpoint": checkpoint,
            "step": step,
        }

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Held-out cycle error: L1 between the images and their translations to the next domain (latent code 0)
        translated back with the style encoder's code of the image."""
        x, y = batch["A"], batch["domain"]
        codes = self.latent_codes((y + 1) % len(self.domains), torch.zeros(len(x), dtype=torch.long))
        G = self.translator("generator")
        return {"cycle": (G(G(x, codes), self.translator("style_encoder")(x, y)) - x).abs().mean()}

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Grids as the paper shows them. Per target domain (latent-guided): the images | their translations with
        latent codes 0, 1 and 2 of that domain. "reference" (reference-guided): a first row of the images themselves
        as references (under a grey corner), then per image: the image | its translation with each reference's style
        (the reference's own domain)."""
        x, y = batch["A"], batch["domain"]
        G, n = self.translator("generator"), len(x)
        columns: dict[str, list[Tensor]] = {}
        for t, name in enumerate(self.domains):
            columns[name] = [x, *(G(x, self.latent_codes(t, torch.full((n,), i))) for i in range(3))]
        codes = self.translator("style_encoder")(x, y)  # (N, style_dim): each image's style, of its own domain
        corner = torch.zeros_like(x[:1])
        columns["reference"] = [torch.cat([corner, x])]
        columns["reference"] += [torch.cat([x[j : j + 1], G(x, codes[j].expand(n, -1))]) for j in range(n)]
        return columns
