"""seq2seq-train on a simulated full disk: the fault drill's fallback where ``mount`` is refused.

    python scripts/fault_drill_full_disk.py [seq2seq-train overrides]

Runs seq2seq-train's real entry point in this process, with ``torch.save`` replaced: from the
Nth checkpoint save on (``FAULT_DRILL_ENOSPC_FROM``, default 1) it writes part of the file, as
a filling disk does, then raises ``OSError(ENOSPC)``. Everything else is the normal training.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's seq2seq

import torch  # noqa: E402

FULL_FROM = int(os.environ.get("FAULT_DRILL_ENOSPC_FROM", "1"))
_real_save = torch.save
_saves = 0


def _full_disk_save(obj, f, *args, **kwargs):
    global _saves
    _saves += 1
    if _saves < FULL_FROM:
        return _real_save(obj, f, *args, **kwargs)
    if hasattr(f, "write"):
        f.write(b"PK\x03\x04" + bytes(8192))  # what fitted before the disk was full
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


torch.save = _full_disk_save

if __name__ == "__main__":
    from seq2seq.cli.train import main

    sys.argv = ["seq2seq-train", *sys.argv[1:]]
    main()
