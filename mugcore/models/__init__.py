"""Networks shared by labelgen (stages 1-2) and trainer (stage 3): one file per network."""
