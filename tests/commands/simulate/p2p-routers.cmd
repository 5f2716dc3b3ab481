# The routers' guarded upgrade on the P2P deployment, fault-free: every check holds.
simulate tests/roles/cases/p2p-routers.deladas --deployment tests/roles/deployments/p2p.ddd.xml --roles tests/commands/simulate/p2p-routers.roles.xml --steps 5
