"""Code shared by labelgen and trainer: dataset formats, encoders, metrics."""
