"""Sample building on Apache Spark (``dipn build-samples --engine spark``).

The default engine reads every log into one process. This one spreads the same work over a Spark
cluster (or ``local[N]`` cores) without re-expressing any of it in Spark SQL: Spark reads the
files, moves each range of users (one shard) to one task, and the task calls the very encoder,
cut sampling and labelling of ``dipn.samples.build``; the phone runs that encoder too, so it stays
the single source of truth. The driver only does what needs the whole dataset: the user index,
the time window, the vocabularies and where each shard starts in the cut sampler's random stream.
Both engines write identical sample directories from the same input.
"""

from dipn.samples.spark.build import build_samples_spark
from dipn.samples.spark.session import spark_session, spark_unavailable

__all__ = ["build_samples_spark", "spark_session", "spark_unavailable"]
