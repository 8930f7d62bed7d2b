"""FastAPI service over the label store: datasets, jobs, labels (see api.app)."""
