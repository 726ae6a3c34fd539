"""TFDS builders (`builders/`), the TF-free build CLI (`build.py`), the face topology TRG regresses
(`topology.py`) and the grain input pipelines (`pipelines/`). See docs/datasets.md."""

import logging as _logging


class _QuietDecoderWarning(_logging.Filter):
    """TFDS warns on every image decode that OpenCV is absent; PIL is what we use on purpose."""

    def filter(self, record: _logging.LogRecord) -> bool:
        return "OpenCV is not installed" not in record.getMessage()


_logging.getLogger("absl").addFilter(_QuietDecoderWarning())
