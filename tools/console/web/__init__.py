"""`gc-console serve`: the fleet and device pages in a browser, `/metrics` for Prometheus.

See docs/web-console.md. One module per job: `series` (a device's history,
downsampled), `fleet` (the live table and its updates), `security` (who may
see and do what), `notes` (acknowledgements, silences, who sent which
command), `metrics` (Prometheus), `app` (the routes), `serve` (the command).
"""
