# A host fails and a new one is added as a declaration: the JSON plan moves work there.
resolve examples/p2p.deladas --from tests/roles/deployments/p2p.ddd.xml --fail-host h2 --add-host 'h9 = host(ipaddress = "10.0.0.9")' --plan-format json
