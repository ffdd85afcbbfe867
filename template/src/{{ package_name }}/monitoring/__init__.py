"""Level 4: the model in service, observed (docs/monitoring.md).

The prediction log, `/feedback` and `/metrics` (installed into the level-3
API by `api.install`), the monitoring report and the traffic simulator.
"""
