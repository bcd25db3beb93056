"""A model's own defaults for arguments it inherits, without declaring them again."""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def inherited_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named parameters of the `__init__` that `cls.__init__` hands its `**kwargs` to (the next in the MRO)."""
    parent = super(cls, cls).__init__  # type: ignore[misc]
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        name: p for name, p in inspect.signature(parent).parameters.items() if name != "self" and p.kind not in kinds
    }


def model_defaults(**defaults: Any) -> Callable[[T], T]:
    """Class decorator: give arguments that a model inherits (through `**kwargs`, e.g. `GANModule`'s `lr`,
    `optimizer_G`, `ema_decay`) defaults of its own, e.g. `@model_defaults(lr=1e-3, ema_decay=0.999)`.

    The constructor's signature (what `inspect.signature`, and so LightningCLI's parser, `--help` and
    `--print_config`, read) lists the model's own arguments and then the inherited ones with these defaults;
    arguments given explicitly win. The model's docstring should say why it differs.

    Raises:
        TypeError: at class creation, for a name the model does not inherit or declares itself.
    """

    def decorate(cls: T) -> T:
        init = cls.__init__
        own = inspect.signature(init).parameters
        inherited = inherited_parameters(cls)
        wrong = [name for name in defaults if name not in inherited or name in own]
        if wrong:
            raise TypeError(f"{cls.__name__}: model_defaults names {wrong}, which it does not inherit (or declares)")
        if not any(p.kind is p.VAR_KEYWORD for p in own.values()):
            raise TypeError(f"{cls.__name__}.__init__ must take **kwargs to pass inherited arguments on")

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **(defaults | kwargs))

        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [p for p in own.values() if p.kind is not p.VAR_KEYWORD]
        parameters += [
            p.replace(default=defaults.get(name, p.default), kind=keyword)
            for name, p in inherited.items()
            if name not in own
        ]
        __init__.__signature__ = inspect.signature(init).replace(parameters=parameters)  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[misc]
        cls.own_defaults = dict(defaults)  # type: ignore[attr-defined]
        return cls

    return decorate
