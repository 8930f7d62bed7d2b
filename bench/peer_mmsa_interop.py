"""MMSA 2.2.1's own `MMSA_run` on an exported pickle: the peer side of bench_mmsa_interop.py.

Runs inside the virtualenv bench_peer.py builds, so it imports nothing of ours. It trains
`--model` (mtfn, mlf_dnn or self_mm) on `--data` with `dataset_name='sims'` (the name under
which MMSA's loader reads `regression_labels_T/_A/_V`) and changes four things only:

- the CPU shim of peer_selfmm.py (MMSA calls `torch.cuda.set_device` on the CPU device);
- `repair_train_log`: MMSA 2.2.1's MTFN, MLF_DNN and MLMF end epoch 1 in UnboundLocalError
  (a log line reads `train_results` before it is set); the line is recompiled without it;
- a stop after `--epochs` epochs: the trainer's validation call of that epoch sets
  `early_stop` to 0, so MMSA's own loop ends there, saves what it saves (Self-MM's
  `save_labels` pickle) and MMSA_run tests the model as usual;
- a record of the label arrays MMSA's `MMDataset` built for each split (`self.labels`),
  written to `--labels-out` (NPZ, keys `<split>_<M|T|A|V>`), so that the caller can check they
  are the labels it exported.

One JSON line goes to stdout: MMSA's test metrics, wall time, label keys seen.

    python bench/peer_mmsa_interop.py --model mtfn --data FILE.pkl --workdir DIR \
        --labels-out labels.npz [--checkpoint MINILM_DIR] [--epochs 1]
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TRAINERS = {"mtfn": ("MMSA.trains.multiTask.MTFN", "MTFN"),
            "mlf_dnn": ("MMSA.trains.multiTask.MLF_DNN", "MLF_DNN"),
            "self_mm": ("MMSA.trains.multiTask.SELF_MM", "SELF_MM")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(TRAINERS), required=True)
    p.add_argument("--data", type=Path, required=True, help="SIMS-shaped MMSA pickle")
    p.add_argument("--workdir", type=Path, required=True, help="MMSA's logs, models, results")
    p.add_argument("--labels-out", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, help="local BERT checkpoint (self_mm)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1111)
    args = p.parse_args()

    import importlib

    import numpy as np
    import torch
    from peer_selfmm import install_cpu_shim  # beside this file, also without our packages

    torch.set_num_threads(args.threads)
    install_cpu_shim()

    from MMSA import data_loader
    from MMSA.run import MMSA_run

    seen: dict[str, Any] = {}
    init = data_loader.MMDataset.__init__

    def recording_init(self: Any, loader_args: Any, mode: str = "train") -> None:
        init(self, loader_args, mode)
        for key, value in self.labels.items():
            seen[f"{mode}_{key}"] = np.asarray(value, dtype=np.float32).reshape(-1)

    data_loader.MMDataset.__init__ = recording_init

    module, name = TRAINERS[args.model]
    trainer = getattr(importlib.import_module(module), name)
    repair_train_log(trainer)
    do_test = trainer.do_test
    epochs_done = [0]
    test_results: dict[str, Any] = {}

    def stopping_test(self: Any, model: Any, dataloader: Any, mode: str = "VAL", **kw: Any
                      ) -> Any:
        result = do_test(self, model, dataloader, mode=mode, **kw)
        if mode == "TEST":  # MMSA_run returns nothing: its test call is kept here
            test_results.update(result)
        if mode == "VAL":
            epochs_done[0] += 1
            if epochs_done[0] >= args.epochs:
                self.args.early_stop = 0  # MMSA's own check then ends training here
        return result

    trainer.do_test = stopping_test
    config: dict[str, Any] = {"featurePath": str(args.data), "train_samples": args.train_samples}
    if args.model == "self_mm":
        assert args.checkpoint is not None, "self_mm needs --checkpoint"
        hidden = json.loads((args.checkpoint / "config.json").read_text())["hidden_size"]
        config |= {"pretrained": str(args.checkpoint), "text_out": int(hidden),
                   "save_labels": True,
                   # Self-MM writes its labels there but MMSA_run never sets it
                   "res_save_dir": str(args.workdir / "results")}
    started = time.perf_counter()
    MMSA_run(args.model, "sims", config=config, seeds=[args.seed], gpu_ids=[],
                       num_workers=0, verbose_level=0,
                       model_save_dir=args.workdir / "models",
                       res_save_dir=args.workdir / "results", log_dir=args.workdir / "logs")
    np.savez(args.labels_out, **seen)
    print(json.dumps({"model": args.model, "epochs": epochs_done[0],
                      "wall_s": time.perf_counter() - started, "label_keys": sorted(seen),
                      "test": _plain(test_results)}))
    return 0


def repair_train_log(trainer: Any) -> None:
    """MMSA 2.2.1's MTFN, MLF_DNN and MLMF format `train_results` into their per-epoch TRAIN
    log line before the first assignment to it, so every run stops at the end of epoch 1 with
    UnboundLocalError (on any device). Recompile `do_train` from MMSA's own source with that
    one variable left out of that one f-string; nothing else changes."""
    import inspect
    import sys as _sys
    import textwrap

    bug = " {dict_to_str(train_results)}\""
    source = textwrap.dedent(inspect.getsource(trainer.do_train))
    if bug not in source:
        return  # Self-MM (the line is commented out there) or a fixed MMSA
    namespace = vars(_sys.modules[trainer.__module__])
    compiled: dict[str, Any] = {}
    exec(compile(source.replace(bug, "\"", 1), inspect.getsourcefile(trainer), "exec"),
         namespace, compiled)
    trainer.do_train = compiled["do_train"]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


if __name__ == "__main__":
    sys.exit(main())
