"""Defaults written once: a model changes an inherited default with `model_defaults`, never by declaring the
argument again, and the command line shows the model's default."""

import inspect

import pytest
from jsonargparse import ArgumentParser

from lit_gan.models import MODELS, GANModule, ProGAN, StarGANv2
from lit_gan.models.defaults import inherited_parameters, model_defaults
from lit_gan.models.progan import ProGANAdam

BASE = set(inspect.signature(GANModule.__init__).parameters) - {"self"}


def own_parameters(cls: type) -> set[str]:
    init = inspect.unwrap(cls.__init__)  # the constructor as written, without model_defaults' wrapper
    return set(inspect.signature(init).parameters) - {"self", "kwargs"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_model_declares_an_inherited_argument_again(name):
    repeated = own_parameters(MODELS[name]) & BASE
    assert not repeated, f"{name} declares {sorted(repeated)} again: give their defaults with @model_defaults"


@pytest.mark.parametrize("name", sorted(n for n, cls in MODELS.items() if "own_defaults" in vars(cls)))
def test_signature_lists_every_argument_once_with_the_model_defaults(name):
    cls = MODELS[name]
    parameters = inspect.signature(cls.__init__).parameters
    assert BASE <= set(parameters) and not any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for key, value in cls.own_defaults.items():
        assert parameters[key].default == value


def test_the_parser_and_the_model_take_the_model_defaults():
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(ProGAN, "model", sub_configs=True)
    defaults = parser.get_defaults().model
    assert defaults.lr == 1e-3 and defaults.ema_decay == 0.999 and defaults.r1_gamma == 0.0  # r1: GANModule's
    assert parser.parse_args(["--model.lr=0.5"]).model.lr == 0.5  # an explicit value wins
    model = ProGAN(sample_grid=1)
    assert model.hparams.lr == 1e-3 and model.ema_decay == 0.999 and model.init_type == "normal"
    assert ProGAN(sample_grid=1, lr=0.5).hparams.lr == 0.5
    assert inspect.signature(ProGAN).parameters["optimizer_G"].default is ProGANAdam
    assert StarGANv2.own_defaults["init_type"] == "kaiming"


def test_model_defaults_refuses_what_is_not_inherited():
    class Model(GANModule):
        def __init__(self, width: int = 1, **kwargs) -> None:
            super().__init__(**kwargs)

    assert "lr" in inherited_parameters(Model)
    with pytest.raises(TypeError, match="learning_rate"):
        model_defaults(learning_rate=1e-3)(Model)
    with pytest.raises(TypeError, match="width"):
        model_defaults(width=2)(Model)
