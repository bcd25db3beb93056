"""Hyperparameter sweeps in W&B's format: checking sweep files (`config`), running them offline (`runner`,
`command`), reading runs' histories (`history`) and comparing runs (`compare`, `workspace`). Import from the modules.
The sweep code does not import the command line (`tests/test_layering.py`): the command line gives it the parser
that checks trial commands."""
