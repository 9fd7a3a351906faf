"""Pretrained models: musicnn (MTT and MSD) ported to PyTorch from their TensorFlow checkpoints."""
