"""A job that fails on an unexpected error: its log, which read-token holders see, holds the
one-line error and no traceback (it showed server paths and code); the traceback goes to the
worker's own log."""

import logging
import multiprocessing as mp
from pathlib import Path

import pytest

from labelgen.service.worker import Worker
from storage import LabelStore
from storage.testing import random_dataset


class _Gone:
    """Stands for the job's child process, which has sent its last message."""

    exitcode = 1

    def is_alive(self) -> bool:
        return False


def test_a_failed_jobs_log_holds_no_traceback(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with LabelStore.open(tmp_path / "store") as store:
        store.register_dataset("d", random_dataset((8, 4, 4)), source_format="pickle")
        store.create_job("d", {"method": "copy"})
        worker = Worker(store, name="w")
        job = store.claim_job("w")
        assert job is not None
        receiver, sender = mp.Pipe(duplex=False)
        trace = ('Traceback (most recent call last):\n  File "/srv/mug/labelgen/generate.py", '
                 'line 1, in generate_labels\nValueError: boom')
        sender.send(("error", "ValueError: boom", trace))
        with caplog.at_level(logging.ERROR, logger="labelgen.service.worker"):
            status = worker._supervise(job, dict(job.options), _Gone(), receiver, mp.Event())
        assert status == "failed"
        assert store.get_job(job.id).error == "ValueError: boom"
        text = "\n".join(line.text for line in store.read_job_log(job.id))
        assert "Traceback" not in text and "/srv/mug" not in text
        assert "Traceback" in caplog.text  # for whoever runs the worker
