"""GPU runners as code: the `runners:` section of mlci.yml, cross-checked against the pipeline and
rendered into files the team commits and applies with its own tools (Helm, OpenTofu, Ansible).

model.py      mlci.yml -> Fleet (pools, prices, cost guard), pure
crosscheck.py Fleet + pipeline jobs -> findings and per-pool resource ceilings, pure
render/       Fleet -> {relative path: text}, one module per target, pure
plan.py       the plan (pools, limits, floor cost) as JSON, markdown and a report section
"""
