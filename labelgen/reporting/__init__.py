"""`labelgen report`: a label file's figures and tables against truth and copy."""
