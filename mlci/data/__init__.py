"""Data tests: contracts (`mlci data check`) and drift (`mlci data drift`).

A contract, inline under `data.sources.<name>.contract` in mlci.yml or in its
own YAML file of the same shape (the schema is mlci/config/schemas/data.schema.json):

    columns:
      id:       {dtype: int64, not-null: true, unique: true}
      amount:   {dtype: float64, min: 0, max: {value: 1000000, exclusive: true}, max-null-fraction: 0.01}
      country:  {allowed: [DE, FR, IT]}
      sku:      {regex: 'SKU-\\d{6}', length: {min: 10, max: 10}, severity: warn}
      score:    {mean: {min: -0.1, max: 0.1}, std: {max: 2}, quantiles: [{q: 0.5, min: -0.1, max: 0.1}]}
      created:  {dtype: datetime, max-age: 2d}
    unique: [[user_id, day]]
    no-extra-columns: true
    rows: {min: 1000}
    expressions:
      - {name: refunds are negative, sql: "kind <> 'refund' OR amount < 0"}

Modules: contract.py (parse + semantic checks, file:line errors), check.py
(one fused lazy polars query per file, then a bounded examples pass),
report.py (JUnit/JSON/markdown/terminal), sources.py (files, globs, formats),
drift.py (PSI/KS/chi-square), drift_report.py (reports and plots),
reference.py (the champion's training-data snapshot).
"""
