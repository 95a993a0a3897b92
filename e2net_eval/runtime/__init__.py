"""Runtime layer, below training and inference (which import from here, never from each
other): slice geometry, orientation, device and precision policy, trained weights, timing.
"""
