"""`labelgen --help` and `trainer --help` stay quick: building the parsers imports none of the
heavy libraries (torch, transformers, scikit-learn, SQLAlchemy), which load only in the
commands that use them. Checked by module, in a fresh interpreter, not by the clock."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sklearn", "sqlalchemy", "alembic", "matplotlib")


@pytest.mark.parametrize("cli", ["labelgen.cli", "trainer.cli", "api.main"])
def test_help_imports_no_heavy_library(cli: str) -> None:
    # mug-api's --help: not the server's libraries either (they took 3.5 s on a busy machine).
    heavy = HEAVY + (("fastapi", "uvicorn", "pydantic", "h5py") if cli == "api.main" else ())
    code = (f"import sys, contextlib, io\nfrom {cli} import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            f"print(__import__('json').dumps([m for m in {heavy!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
