"""`labelgen worker`: serve label-generation jobs from a label store."""

import argparse

from mugcore.device import DEVICES, check_device

# Flag dest -> Settings field; unset flags fall back to MUG_* variables, then the defaults.
_FLAGS = {"store": "store", "files": "files", "poll_s": "poll_s",
          "stale_s": "job_stale_s", "stale_policy": "job_stale_policy",
          "max_attempts": "job_max_attempts", "device": "device",
          "ranks": "ranks"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker", help="claim queued label-generation jobs from a store and run them",
        description="Claim queued jobs from the store one at a time and run stages 1-2 of "
                    "each in a child process, reporting stage, progress and ETA; a cancel "
                    "request stops the job within seconds. Jobs whose worker died are "
                    "requeued (or failed) once their heartbeat is older than --stale-s. "
                    "Every option also reads its MUG_* environment variable "
                    "(MUG_STORE, MUG_FILES, MUG_POLL_S, MUG_JOB_STALE_S, ...). "
                    "Stop with SIGTERM or Ctrl-C.")
    p.add_argument("--store", metavar="DIR_OR_URL",
                   help="store directory (SQLite) or postgresql+psycopg:// URL (MUG_STORE)")
    p.add_argument("--files", metavar="DIR",
                   help="HDF5 file root of a PostgreSQL store (MUG_FILES)")
    p.add_argument("--once", action="store_true",
                   help="run queued jobs until none is left, then exit")
    p.add_argument("--poll-s", type=float, metavar="S",
                   help="seconds between looks at an empty queue (default 1)")
    p.add_argument("--stale-s", type=float, metavar="S",
                   help="a running job whose heartbeat is older than this belongs to a dead "
                        "worker (default 120)")
    p.add_argument("--stale-policy", choices=("requeue", "fail"),
                   help="what becomes of such a job: queued again or failed (default requeue)")
    p.add_argument("--max-attempts", type=int, metavar="N",
                   help="a job requeued this often is failed instead (default 3)")
    p.add_argument("--device", choices=DEVICES,
                   help="where jobs run unless a job names its device: cuda when a GPU is "
                        "visible (auto, the default), cpu, or cuda (MUG_DEVICE; an error "
                        "without a GPU)")
    p.add_argument("--ranks", type=int, metavar="N",
                   help="run each job on N torch.distributed ranks of this machine (gloo on "
                        "the CPU, one GPU each on CUDA; MUG_RANKS; default 1): its "
                        "cross-fitting folds or seed-averaging runs are spread over them, with "
                        "the same labels as one rank")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    # pydantic and the store's SQLAlchemy load when a worker starts, not for `labelgen --help`.
    from labelgen.service.settings import WorkerEnvSettings, settings_from
    from labelgen.service.worker import run_worker

    settings = settings_from(WorkerEnvSettings,
                             {field: getattr(args, dest) for dest, field in _FLAGS.items()})
    check_device(settings.device)  # before serving: a worker without its GPU takes no job
    return run_worker(settings.store, files=settings.files,
                      settings=settings.worker_settings(once=args.once))
