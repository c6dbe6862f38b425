"""Fault injection for worker subprocesses (put this folder on PYTHONPATH; Python imports it at start-up).

`FAULT_EMBED_WHILE=PATH`: while PATH exists, the local embedding model fails every call the way an
ONNX Runtime failure does (an exception out of `session.run`), so a test can crash the quality
backend of a real worker and bring it back by deleting the file.
"""

import os

if os.environ.get("FAULT_EMBED_WHILE"):
    from pathlib import Path

    from streams.quality import local_minilm

    _flag = Path(os.environ["FAULT_EMBED_WHILE"])
    _real = local_minilm.LocalMiniLM.embed_sync

    def _faulty(self, texts):
        if _flag.exists():
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : injected by the test")
        return _real(self, texts)

    local_minilm.LocalMiniLM.embed_sync = _faulty
