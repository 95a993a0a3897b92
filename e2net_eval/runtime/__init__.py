"""Runtime layer, below training and inference (which import from here, never from each
other): slice geometry, orientation, device and precision policy, trained weights, timing.
"""

#: What `--device` accepts (the CLI's help and the device check's error say it).
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"
