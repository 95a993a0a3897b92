"""Runtime layer, below training and inference: how networks meet slices and devices.

``geometry`` (liver boxes, crops, resizing, pasting), ``orientation`` (canonical axial
slices and back), ``device`` (device, CPU threads, mixed precision, memory format),
``weights`` (rebuild a trained configuration, backbone weights, digests) and ``timing``
(work counted, time measured, the machine's matmul rate). Training and inference both
import from here and never from each other.
"""
