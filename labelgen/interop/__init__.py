"""Label sets in and out of the MMSA ecosystem: MMSA pickles carrying uni-labels, other
generators' label files (Self-MM's `save_labels`, CSV), and label sets compared side by side."""
