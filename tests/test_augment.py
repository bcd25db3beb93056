"""`lit_gan.augment`: DiffAugment's transforms, ADA's adaptive probability, and `model.augment` in every model."""

import json

import pytest
import torch
from torch import nn

import tests.test_performance as performance_tests
from lit_gan.augment import DiffAugment, brightness, contrast, cutout, saturation, translate
from lit_gan.export import export_generator
from lit_gan.losses import gan_loss
from lit_gan.losses.gan import GAN_LOSSES, gradient_penalty
from lit_gan.models import CycleGAN
from lit_gan.models.loading import load_checkpoint
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator
from tests.helpers import TINY_MODELS, fit, tiny_args


def images(b: int = 4, c: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # (B, C, S, S)


def augment_arg(**init_args) -> str:
    return f"--model.augment={json.dumps({'class_path': 'lit_gan.augment.DiffAugment', 'init_args': init_args})}"


# -- the transforms ---------------------------------------------------------------------------------------------------


def test_brightness_shifts_each_image_mean_by_its_amount():
    x, shift = images(), torch.tensor([-0.5, -0.1, 0.2, 0.5])
    torch.testing.assert_close(brightness(x, shift).mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)) + shift)


def test_saturation_scales_each_pixel_around_its_channel_mean():
    x = images()
    grey = saturation(x, torch.zeros(4))
    torch.testing.assert_close(grey, x.mean(dim=1, keepdim=True).expand_as(x))
    torch.testing.assert_close(saturation(x, torch.ones(4)), x)
    doubled = saturation(x, torch.full((4,), 2.0))
    torch.testing.assert_close(doubled - grey, 2 * (x - grey))


def test_contrast_scales_around_each_image_mean_and_keeps_it():
    x, factor = images(), torch.tensor([0.5, 1.0, 1.2, 1.5])
    out = contrast(x, factor)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, (x - mean) * factor.view(-1, 1, 1, 1) + mean)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))


def test_colour_transforms_treat_each_stacked_image_with_its_own_means():
    a, b = images(2, seed=1), images(2, seed=2)
    stacked = torch.cat([a, b], 1)  # (B, 6, H, W): a conditional discriminator's (input, output) pairs
    factor = torch.tensor([0.3, 1.7])
    for transform in (saturation, contrast):
        expected = torch.cat([transform(a, factor), transform(b, factor)], 1)
        torch.testing.assert_close(transform(stacked, factor), expected)


def test_translate_moves_content_by_whole_pixels_with_zero_fill():
    x = images(2, 2, 6)
    out = translate(x, torch.tensor([2, -1]), torch.tensor([-1, 0]))
    # image 0: down 2, left 1
    torch.testing.assert_close(out[0, :, 2:, :5], x[0, :, :4, 1:])
    assert (out[0, :, :2] == 0).all() and (out[0, :, :, 5] == 0).all()
    # image 1: up 1
    torch.testing.assert_close(out[1, :, :5], x[1, :, 1:])
    assert (out[1, :, 5] == 0).all()


def test_cutout_zeroes_exactly_one_rectangle_in_every_channel():
    x = torch.ones(2, 3, 8, 8)
    out = cutout(x, torch.tensor([1, 6]), torch.tensor([2, -2]), 4, 4)
    expected = torch.ones(2, 3, 8, 8)
    expected[0, :, 1:5, 2:6] = 0
    expected[1, :, 6:8, 0:2] = 0  # partly outside the image: clipped
    torch.testing.assert_close(out, expected)


# -- DiffAugment ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradients_reach_the_input(policy):
    x = images().requires_grad_(True)
    (DiffAugment(policy)(x) * images(seed=3)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_probability_zero_is_the_identity(policy):
    x = images(8)
    assert torch.equal(DiffAugment(policy, p=0.0)(x), x)


def test_each_image_is_transformed_with_probability_p():
    x = torch.zeros(4000, 1, 2, 2)
    changed = (DiffAugment("color", p=0.5, image_channels=1)(x) != 0).flatten(1).any(1).float().mean()
    assert 0.45 < float(changed) < 0.55  # brightness (saturation and contrast leave a flat image alone)


def test_translation_policy_shifts_by_at_most_an_eighth():
    torch.manual_seed(0)
    x = images(16, 1, 16)
    out = DiffAugment("translation")(x)
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for i in range(16):
        assert any(torch.equal(out[i : i + 1], translate(x[i : i + 1], torch.tensor([dy]), torch.tensor([dx])))
                   for dy, dx in shifts), i  # fmt: skip


def test_cutout_policy_zeroes_one_square_of_half_the_side():
    torch.manual_seed(0)
    out = DiffAugment("cutout")(torch.ones(32, 1, 8, 8))
    for image in out[:, 0]:
        rows, cols = (image == 0).nonzero(as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height * width == len(rows)  # one filled rectangle
        assert (height, width) == (4, 4) or (rows.min() == 0 or rows.max() == 7 or cols.min() == 0 or cols.max() == 7)
    assert any(int((image == 0).sum()) == 16 for image in out[:, 0])


def test_stacked_images_get_the_same_transform():
    torch.manual_seed(0)
    a = images(8)
    out = DiffAugment()(torch.cat([a, a], 1))  # (B, 6, H, W)
    torch.testing.assert_close(out[:, :3], out[:, 3:])


def test_invalid_settings_are_named():
    with pytest.raises(ValueError, match="unknown \\['colour'\\]; valid: comma-separated color, translation, cutout"):
        DiffAugment("colour,cutout")
    with pytest.raises(ValueError, match="image_channels is 3, but the discriminator's input has 4 channels"):
        DiffAugment()(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="p must be in"):
        DiffAugment(p=1.5)


# -- ADA --------------------------------------------------------------------------------------------------------------


def test_gan_loss_midpoints():
    assert {name: cls.midpoint for name, cls in GAN_LOSSES.items()} == {
        "lsgan": 0.5,
        "vanilla": 0.0,
        "hinge": 0.0,
        "wgangp": 0.0,
        "wgangp_drift": 0.0,
    }


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_discriminator_loss_with_real_scores_matches_the_loss(name):
    loss, D = gan_loss(name), nn.Conv2d(3, 1, 3)
    real, fake = images(seed=1), images(seed=2)
    torch.manual_seed(0)
    total, pred_real = loss.discriminator_and_real_scores(D, real, fake, 0.5)
    torch.manual_seed(0)  # the gradient penalty's draws
    expected = (loss.real(D(real)) + loss.fake(D(fake))) * 0.5  # the two terms, weighted, written out
    if name.startswith("wgangp"):
        expected = expected + 10 * gradient_penalty(D, real, fake)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(pred_real, D(real))
    torch.manual_seed(0)
    torch.testing.assert_close(loss.discriminator(D, real, fake, 0.5), total)


def ada_steps(augment: DiffAugment, scores: float, steps: int, batch: int = 2) -> None:
    for _ in range(steps):
        augment.observe(torch.full((batch, 1, 4, 4), scores), midpoint=0.5)
        augment.step()


def test_ada_raises_p_when_the_discriminator_is_overconfident_on_reals():
    augment = DiffAugment(adaptive=True, interval=4, ada_kimg=0.1)  # 100 images from 0 to 1
    assert float(augment.p) == 0.0
    ada_steps(augment, 0.9, 3)
    assert float(augment.p) == 0.0  # not before `interval` steps
    ada_steps(augment, 0.9, 1)
    assert float(augment.p) == pytest.approx(8 / 100)  # 4 steps of 2 images
    assert torch.equal(augment.stats, torch.zeros(4))
    ada_steps(augment, 0.9, 4 * 20)
    assert float(augment.p) == 1.0  # clamped


def test_ada_lowers_p_otherwise_down_to_zero():
    augment = DiffAugment(p=0.5, adaptive=True, interval=4, ada_kimg=0.1)
    ada_steps(augment, 0.1, 4)  # every real below LSGAN's midpoint: r_t = -1
    assert float(augment.p) == pytest.approx(0.5 - 8 / 100)
    augment.observe(torch.tensor([0.9, 0.9, 0.1, 0.9, 0.9]), midpoint=0.5)  # r_t = 0.6: not above the target
    for _ in range(4):
        augment.step()
    assert float(augment.p) == pytest.approx(0.5 - 8 / 100 - 5 / 100)
    ada_steps(augment, 0.1, 4 * 20)
    assert float(augment.p) == 0.0


def test_fixed_probability_does_not_adapt():
    augment = DiffAugment(p=0.3)
    ada_steps(augment, 0.9, 8)
    assert float(augment.p) == pytest.approx(0.3) and torch.equal(augment.stats, torch.zeros(4))


# -- in the models ----------------------------------------------------------------------------------------------------


def tiny_cyclegan(augment=None) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(ResnetGenerator(ngf=4, n_blocks=1), PatchGANDiscriminator(ndf=4, n_layers=2), augment=augment)


def test_discriminators_see_augmented_inputs_only_in_training_mode():
    model, plain = tiny_cyclegan("color,translation,cutout"), tiny_cyclegan()
    D, D_plain, x = model.discriminators["A"], plain.discriminators["A"], images(2, size=32)
    model.train(), plain.train()
    torch.manual_seed(1)
    augmented = D(x)
    assert not torch.allclose(augmented, D_plain(x))
    torch.manual_seed(1)
    torch.testing.assert_close(D(x), augmented)  # drawn from torch's global generator
    model.eval(), plain.eval()
    torch.testing.assert_close(D(x), D_plain(x))


def test_generator_side_outputs_are_the_same_with_and_without_augmentation():
    on, off = tiny_cyclegan(DiffAugment(adaptive=True, p=1.0)), tiny_cyclegan()
    real_A, real_B = images(2, size=32, seed=1), images(2, size=32, seed=2)
    on.train(), off.train()
    torch.manual_seed(3)
    losses_on, *fakes_on = on.generator_losses(real_A, real_B)
    torch.manual_seed(3)
    losses_off, *fakes_off = off.generator_losses(real_A, real_B)
    for name in ("cycle_A", "cycle_B", "idt_A", "idt_B"):
        torch.testing.assert_close(losses_on[name], losses_off[name], msg=name)
    assert not torch.allclose(losses_on["G_A"], losses_off["G_A"])  # the discriminator saw augmented fakes
    for a, b in zip(fakes_on, fakes_off, strict=True):
        torch.testing.assert_close(a, b)
    on.eval(), off.eval()
    batch = {"A": real_A, "B": real_B}
    for direction, columns in on.sample_images(batch).items():
        for a, b in zip(columns, off.sample_images(batch)[direction], strict=True):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(on.evaluation_losses(batch), off.evaluation_losses(batch))
    torch.testing.assert_close(on.predict_step(batch), off.predict_step(batch))


def test_gradient_penalty_through_augmentation():
    model = tiny_cyclegan("color,translation,cutout")
    model.train()
    penalty = gradient_penalty(model.discriminators["A"], images(2, size=32, seed=1), images(2, size=32, seed=2))
    penalty.backward()
    assert torch.isfinite(penalty)
    grads = [p.grad for p in model.discriminators["A"].parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


def test_state_dict_holds_p_and_its_statistics():
    model = tiny_cyclegan(DiffAugment(adaptive=True, p=0.25))
    state = model.state_dict()
    assert float(state["augment.p"]) == 0.25 and state["augment.stats"].shape == (4,)
    assert not any(key.startswith("augment.") for key in tiny_cyclegan().state_dict())


ADA = augment_arg(adaptive=True, p=0.5, interval=1, ada_kimg=0.01)  # 10 images from 0 to 1: p moves every step


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_training_with_adaptive_augmentation_logs_p_and_checkpoints_it(model, tmp_path):
    cli = fit(tiny_args("--trainer.max_steps=3", ADA, model=model))
    p = cli.model.augment.p
    assert cli.trainer.callback_metrics["train/augment_p"] == pytest.approx(float(p))
    assert float(p) != 0.5  # adapted
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    loaded, _ = load_checkpoint(ckpt)
    assert isinstance(loaded.augment, DiffAugment) and loaded.augment.adaptive
    assert torch.equal(loaded.augment.p, p) and torch.equal(loaded.augment.stats, cli.model.augment.stats)


def test_a_policy_string_is_enough(tmp_path):
    cli = fit(tiny_args("--trainer.max_steps=1", "--model.augment=color,cutout"))
    assert cli.model.augment.policies == ["color", "cutout"] and float(cli.model.augment.p) == 1.0
    assert cli.trainer.callback_metrics["train/augment_p"] == 1.0
    loaded, _ = load_checkpoint(next((tmp_path / "runs").rglob("last.ckpt")))
    assert loaded.augment.policies == ["color", "cutout"]


def test_no_host_synchronisation_with_adaptive_augmentation(monkeypatch):
    performance_tests.test_training_steps_do_not_read_tensors_back_between_logging_steps(
        "cyclegan", monkeypatch, extra=(ADA,)
    )


def test_export_of_an_augmented_model(trained_checkpoint):
    report = export_generator(trained_checkpoint("cyclegan", ADA), formats=["torchscript"])
    assert report.ok, report.table()
