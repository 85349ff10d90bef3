"""A Spark session for sample building: a cluster's master URL or ``local[N]``."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dipn.errors import DipnValidationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Arrow batches between the JVM and the Python workers; the tasks concatenate a shard anyway.
DEFAULT_CONF = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    "spark.sql.adaptive.enabled": "true",
}


def spark_unavailable() -> str | None:
    """Why no Spark session can start here (no PySpark, no Java), or None when one can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'dipn[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and os.path.exists(os.path.join(java_home, "bin", "java")))):
        return "no Java runtime (Debian: apt-get install openjdk-17-jre-headless)"
    return None


@contextmanager
def spark_session(
    master: str = "local[*]", conf: Mapping[str, str] | None = None, progress: bool = True
) -> Iterator[SparkSession]:
    """A session for the length of one build; stopped afterwards.

    Under ``spark-submit`` the session already exists and its own master wins. In local mode
    the Python workers run this interpreter, so they import the same dipn; on a cluster every
    executor needs dipn installed (``spark.pyspark.python`` names its interpreter).
    """
    reason = spark_unavailable()
    if reason:
        raise RuntimeError(f"--engine spark: {reason}")
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName("dipn build-samples")
    settings = {**DEFAULT_CONF, "spark.ui.showConsoleProgress": str(progress).lower(), **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - a JVM that cannot start fails as Py4J, Java or OS errors
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise DipnValidationError(f"--master {master}: Spark could not start ({reason})") from None
    try:
        yield spark
    finally:
        spark.stop()
