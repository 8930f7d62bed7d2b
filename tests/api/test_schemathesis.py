"""Property-based run of the OpenAPI document (schemathesis) against a live server: whatever
the input, no 5xx; every status is documented, a 405 names every method of its path in
`Allow`, and input the schema rules out is refused. (`positive_data_acceptance` stays off:
opaque cursors, file contents and option names are checked beyond what a schema can say.)"""

import subprocess
import sys
from pathlib import Path

import numpy as np

from mugcore.data.io import save_dataset
from mugcore.data.schema import MMSADataset
from storage import LabelStore
from tests.api.conftest import WRITE_TOKEN, start_server


def test_openapi_fuzz_gives_no_server_errors(tmp_path: Path, tiny_sims: MMSADataset) -> None:
    # A dataset with a label set, so that the happy paths are reachable too. No workers: the
    # jobs schemathesis submits stay queued.
    with LabelStore.open(tmp_path / "store") as store:
        info = store.register_dataset("fuzz", tiny_sims, source_format="hdf5")
        ids = np.concatenate([np.asarray(tiny_sims.splits[s]["id"]).astype(str)
                              for s in ("train", "valid", "test")])
        splits = np.repeat(["train", "valid", "test"], [48, 16, 16])
        y = np.concatenate([tiny_sims.splits[s]["regression_labels"]
                            for s in ("train", "valid", "test")]).astype(np.float32)
        store.publish_label_set(info.id, {"clip_id": ids, "split": splits, "multimodal": y,
                                          "text": y, "audio": y, "vision": y},
                                method="copy", options={}, seed=0)
    save_dataset(tiny_sims, tmp_path / "data-root.h5")
    server = start_server(tmp_path, workers=0, env={"MUG_DATA_ROOT": str(tmp_path)})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
             "--checks",
             "not_a_server_error,status_code_conformance,unsupported_method,"
             "negative_data_rejection", "--max-examples", "15", "--seed", "1",
             "--header", f"Authorization: Bearer {WRITE_TOKEN}", "--request-timeout", "30",
             "--max-time", "75", "--no-shrink"],
            cwd=tmp_path,  # schemathesis keeps a cache in ./.schemathesis
            capture_output=True, text=True, timeout=240)
    finally:
        server.stop()
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-3000:]
                                    + server.log_text()[-4000:])
