# Pairs of hosts of the web farm, as JSON: fatal pairs carry their explanation.
whatif examples/webfarm.deladas --from tests/roles/deployments/webfarm.ddd.xml --pairs --format json
