"""LightningModules: training logic only (networks, losses, data and side effects live elsewhere).

The catalogue: every `GANModule` subclass defined in a module of this package is found here, importable as
`lit_gan.models.<Class>` (the configs' `model.class_path`) and listed in `MODELS`; the tests generated from the
catalogue cover it. A new model is one new file in this folder plus its config.
"""

import importlib
import inspect
import pkgutil

from lit_gan.models.base import GANModule, SmokeTest


def _find_models() -> dict[str, type[GANModule]]:
    found: dict[str, type[GANModule]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, GANModule) and cls is not GANModule and cls.__module__ == module.__name__:
                if name in found:
                    raise ImportError(f"two models named {name}: {found[name].__module__} and {module.__name__}")
                found[name] = cls
    return found


MODELS: dict[str, type[GANModule]] = _find_models()
"""Every model of the package, by class name."""

globals().update(MODELS)
__all__ = ["MODELS", "GANModule", "SmokeTest", *MODELS]
