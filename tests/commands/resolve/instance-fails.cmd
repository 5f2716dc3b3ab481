# An instance fails on a live host: restarted in place, everything else kept.
resolve examples/webfarm.deladas --from tests/roles/deployments/webfarm.ddd.xml --fail-instance WebServer@w4
