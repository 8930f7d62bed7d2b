"""Dataset formats (MMSA pickles, the project's HDF5), validation and synthetic data."""
