"""torchrun entry point for tests: the real ``fewshot-audio train`` CLI, except that the process of rank
``$DIE_RANK`` kills itself (SIGKILL, no clean-up) right after step ``$DIE_AFTER_STEP``."""

import os
import signal
import sys

import fewshot_audio.fewshot.harness as api
from fewshot_audio.cli import main

_meta_train = api.meta_train


def meta_train_that_dies(*args, **kwargs):
    die_after, rank = int(os.environ["DIE_AFTER_STEP"]), int(os.environ["RANK"])

    def on_step(step):
        if rank == int(os.environ["DIE_RANK"]) and step == die_after:
            os.kill(os.getpid(), signal.SIGKILL)

    return _meta_train(*args, **{**kwargs, "on_step": on_step})


api.meta_train = meta_train_that_dies
sys.exit(main(sys.argv[1:]))
