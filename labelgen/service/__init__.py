"""The label-generation worker: claims jobs from a store, runs them, publishes label sets."""
