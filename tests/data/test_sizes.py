"""Sizes valid for the network (`lit_gan.data.sizes`, `StyleDataModule.check(model)`): errors name the data keys."""

from types import SimpleNamespace

import pytest
from torch import nn

from lit_gan.data import StyleDataModule
from lit_gan.data.sizes import network_sizes

SYNTH = dict(name="synthetic", num_workers=0, synthetic={"train_size": 2, "test_size": 2})


class FakeGenerator(nn.Module):
    def __init__(self, size_multiple: int) -> None:
        super().__init__()
        self.size_multiple = size_multiple


class FakeTranslator(nn.Module):
    """A model stating its generator's size multiple, as CycleGAN and Pix2Pix do."""

    def __init__(self, size_multiple: int) -> None:
        super().__init__()
        self.G = FakeGenerator(size_multiple)

    @property
    def size_multiple(self) -> int:
        return self.G.size_multiple


@pytest.mark.parametrize(("crop", "options"), [(100, "use 256$"), (300, "use 256 or 512")])
def test_crop_size_must_be_a_multiple_the_generator_needs(crop, options):
    dm = StyleDataModule(**SYNTH, load_size=crop, crop_size=crop)
    with pytest.raises(ValueError, match=f"data.crop_size {crop} is not a multiple of 256") as info:
        dm.check(FakeTranslator(256))
    assert "FakeGenerator in FakeTranslator" in str(info.value)
    assert info.match(options.replace("$", r" \(and data.load_size"))


def test_crop_size_must_equal_a_fixed_image_size():
    dcgan = SimpleNamespace(image_size=64)
    with pytest.raises(ValueError, match=r"data.crop_size 32 differs .* set data.crop_size: 64"):
        StyleDataModule(**SYNTH, load_size=36, crop_size=32).check(dcgan)
    StyleDataModule(**SYNTH, load_size=72, crop_size=64).check(dcgan)
    with pytest.raises(ValueError, match="data.preprocess none keeps each image's own size"):
        StyleDataModule(**SYNTH, crop_size=64, preprocess="none").check(dcgan)


def test_none_rounds_images_to_the_model_multiple():
    dm = StyleDataModule(**SYNTH, crop_size=44, preprocess="none")
    assert dm.sample_batch(1)["A"].shape[-2:] == (44, 44)  # multiple 4 until a model says otherwise
    dm.check(FakeTranslator(16))
    assert dm.sample_batch(1)["A"].shape[-2:] == (48, 48)


def test_models_without_size_attributes_constrain_nothing():
    assert network_sizes(object()).multiple == 1 and network_sizes(object()).image_size is None
    StyleDataModule(**SYNTH, load_size=36, crop_size=30).check(nn.Linear(2, 2))


def test_setup_checks_the_trainers_model():
    dm = StyleDataModule(**SYNTH, load_size=36, crop_size=36)
    dm.trainer = SimpleNamespace(lightning_module=FakeTranslator(8))
    with pytest.raises(ValueError, match="not a multiple of 8"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(crop_size=0), "must be positive"),
        (dict(crop_size=64, load_size=36), "larger than data.load_size"),
        (dict(crop_size=64, load_size=36, preprocess="scale_width"), "larger than data.load_size"),
        (dict(crop_size=8, load_size=8), r"data.load_size \(8\) is too small for the synthetic dataset"),
        (dict(crop_size=8, preprocess="crop"), r"data.crop_size \(8\) is too small for the synthetic dataset"),
    ],
)
def test_bad_size_settings_fail_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StyleDataModule(**SYNTH, **kwargs)
