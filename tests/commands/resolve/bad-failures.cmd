# Failures that the deployment does not have: E0805 with suggestions, exit 2.
resolve examples/p2p.deladas --from tests/roles/deployments/p2p.ddd.xml --fail-host h10 --fail-instance Rooter@h1
