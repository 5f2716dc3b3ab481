# Every single host of the P2P deployment: survives, and how many bindings the best repair keeps.
whatif examples/p2p.deladas --from tests/roles/deployments/p2p.ddd.xml
