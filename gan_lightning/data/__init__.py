"""Data layer: whole-tensor data modules for MNIST's IDX files, image folders and .npz files."""
