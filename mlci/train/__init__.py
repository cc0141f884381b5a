"""Training: the `mlci train` run wrapper and `mlci train-select`.

Pure parts: fingerprint (run-cache key), lineage (tags, params, child env),
telemetry summaries and the idle-GPU detector, select (best run of a sweep),
results (train.json / train.env payloads). Local I/O: sources (hashing code
and data), supervisor (the child process, signals, runaway guard), wrapper
(one full tracked run). MLflow access lives in mlci/adapters/mlflow_tracking.py.
"""
