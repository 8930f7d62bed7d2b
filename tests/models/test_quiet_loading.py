"""Loading the text encoder prints nothing: no "Loading weights" bar in the demo's output, a
job's log or the server log (transformers draws one by default)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loading_the_text_encoder_draws_no_progress_bar() -> None:
    code = ("from mugcore.models.text_encoder import load_bert, default_checkpoint\n"
            "load_bert(default_checkpoint())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "" and "Loading weights" not in proc.stderr, proc.stderr[-2000:]
