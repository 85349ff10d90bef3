"""Public e-commerce logs in their published layouts -> our raw contract, for ``build-samples``.

``import_logs("taobao-userbehavior", ["UserBehavior.csv"], "raw/taobao")`` writes
``browse.parquet`` (the browse view), ``history.parquet`` (snapshots derived from the log) and
``meta.json`` (format, sources, counts, dropped rows by reason, time zone, window). The layouts
and the mapping of each format are in docs/data.md.
"""

from dipn.logs.importers.base import PAGE_LOG, LogFormat
from dipn.logs.importers.formats import FORMATS
from dipn.logs.importers.layout import FileReport
from dipn.logs.importers.pipeline import STAY_CAP_MS, ImportConfig, ImportResult, import_logs

__all__ = [
    "FORMATS", "PAGE_LOG", "STAY_CAP_MS", "FileReport", "ImportConfig", "ImportResult", "LogFormat",
    "import_logs",
]  # fmt: skip
