# A router's host fails: the router moves, every other binding is kept (optimal).
resolve examples/p2p.deladas --from tests/roles/deployments/p2p.ddd.xml --fail-host h1
