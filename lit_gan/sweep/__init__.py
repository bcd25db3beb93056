"""Hyperparameter sweeps in W&B's format: checking sweep files (`config`), running them offline (`runner`,
`command`), and comparing runs (`compare`). Import from the modules: this package imports none of them, so that
`lit_gan.lightning_cli` can read run histories (`history`) without importing the sweep code that imports it."""
