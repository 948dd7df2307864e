"""The typed stack config: models, errors, quantities, GPUs, defaults, stack files."""
