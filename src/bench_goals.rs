//! Generators of benchmark goals: the peers' router/client problem
//! (`../shared/peers/README.md`, "The same problem in Deladas") for N hosts.

/// Which variant of the peers' problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Satisfiable: at most 2 clients per router.
    Satisfy,
    /// Unsatisfiable: at most 1 client per router and at least ⌈3N/4⌉ clients.
    Unsat,
}

/// The P2P goal over hosts `h1 … hN`, exactly as the peers encode it.
pub fn p2p(n: usize, variant: Variant) -> String {
    let mut s = String::new();
    s.push_str("// The peers' router/client deployment (shared/peers/README.md), generated.\n");
    s.push_str("component Client(code = \"c.xml\", ports = {in, out})\n");
    s.push_str("component Router(code = \"r.xml\", ports = {cin[], cout[], rin[], rout[]})\n");
    for i in 1..=n {
        s.push_str(&format!("host h{i} = host(ipaddress = \"10.0.{}.{}\")\n", i / 256, i % 256));
    }
    let cap = if variant == Variant::Unsat { 1 } else { 2 };
    s.push_str(&format!(
        "constraintset peers = constraintset {{
    forall host h in deployment (
        card(instancesof Router in h) + card(instancesof Client in h) = 1
    )
    forall Client c in deployment (
        exists Router r in deployment ( c.out connectsto r.cin  c.in connectsto r.cout )
    )
    forall Router r in deployment ( card(Client c connectedto r) <= {cap} )
    forall Router r1 in deployment (
        exists Router r2 in deployment ( r1.rout connectsto r2.rin  r1.rin connectsto r2.rout  r1 != r2 )
    )
    forall Router r1, r2 in deployment ( reachable(r1, r2) )
"
    ));
    if variant == Variant::Unsat {
        s.push_str(&format!("    card(instancesof Client in deployment) >= {}\n", (3 * n).div_ceil(4)));
    }
    s.push_str("}\n");
    s
}
