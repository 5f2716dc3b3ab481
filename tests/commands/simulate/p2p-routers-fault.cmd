# The new routers corrupt what they send from step 2: detected, rolled back, recovered.
simulate tests/roles/cases/p2p-routers.deladas --deployment tests/roles/deployments/p2p.ddd.xml --roles tests/commands/simulate/p2p-routers.roles.xml --steps 5 --fault-at 2
