# An added host is checked like a declaration: an attribute of another type is E0203, pointing at the added host.
resolve examples/p2p.deladas --from tests/roles/deployments/p2p.ddd.xml --add-host 'h9 = host(ipaddress = 9)'
