"""What runs write and find again: result files, config fingerprints, the base-network
cache, per-epoch checkpoints and the atomic, checksummed files they are all made of."""
