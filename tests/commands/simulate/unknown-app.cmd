# An application for a component the goal does not have: a diagnostic, exit 2.
simulate tests/roles/cases/p2p-routers.deladas --deployment tests/roles/deployments/p2p.ddd.xml --roles tests/commands/simulate/p2p-routers.roles.xml --app Nope=client
