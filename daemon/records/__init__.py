"""Records: every execution exported from the journal to Parquet files under ``records.dir``
and, when configured, uploaded exactly once to Google Cloud Storage through an outbox
(docs/records.md)."""
