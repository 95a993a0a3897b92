"""Reference PyTorch networks of E2Net (MICCAI 2020): the six ablation configurations."""
