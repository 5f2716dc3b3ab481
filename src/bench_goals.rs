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

/// The peers' fixed "resolve" starting point (`common.canonical_old`) as a
/// DDD of [`p2p`]`(n, Satisfy)`: R = max(2, ⌈N/3⌉) routers on `h1 … hR`
/// joined in a bidirectional ring, the other hosts running clients attached
/// round-robin (at most 2 per router). The peers fail the first router host.
pub fn p2p_canonical_ddd(n: usize) -> Result<String, String> {
    use crate::ddd;
    let text = p2p(n, Variant::Satisfy);
    let fs = crate::check::RealFs;
    let loaded = crate::check::load(std::path::Path::new("p2p.deladas"), Some(&text), &fs);
    let (_, checked) = crate::check::check_loaded(loaded);
    if checked.has_errors() {
        return Err("the generated goal does not check".into());
    }
    let program = &checked.program;
    let hosts: Vec<usize> = (0..program.hosts.len()).collect();
    let info = crate::solve::output::GoalInfo { name: Some("p2p.deladas".into()), sha256: None };
    let mut d = crate::solve::output::skeleton(program, &hosts, &info);
    let r = 2.max(n.div_ceil(3)).min(n);
    let router = |i: usize| format!("Router@h{}", i + 1);
    let client = |i: usize| format!("Client@h{}", i + 1);
    for i in 0..n {
        let (c, id) = if i < r { ("Router", router(i)) } else { ("Client", client(i)) };
        d.instances.push(ddd::Instance { id, component: c.into(), host: format!("h{}", i + 1) });
    }
    let end = |instance: String, port: &str| ddd::End { instance, port: port.into(), index: None };
    let mut chan = |from: ddd::End, to: ddd::End| {
        d.channels.push(ddd::Channel { id: String::new(), directed: false, from, to });
    };
    let mut ring = std::collections::BTreeSet::new();
    for i in 0..r {
        let j = (i + 1) % r;
        ring.insert((i, j));
        ring.insert((j, i));
    }
    for (i, j) in ring {
        if i != j {
            chan(end(router(i), "rout"), end(router(j), "rin"));
        }
    }
    for (k, c) in (r..n).enumerate() {
        let ro = k % r;
        chan(end(client(c), "out"), end(router(ro), "cin"));
        chan(end(client(c), "in"), end(router(ro), "cout"));
    }
    d.canonicalize();
    // Variadic indices, numbered per instance port in channel order.
    let mut next: std::collections::HashMap<(String, String), u32> = std::collections::HashMap::new();
    for ch in &mut d.channels {
        for e in [&mut ch.from, &mut ch.to] {
            if e.instance.starts_with("Router@") {
                let k = next.entry((e.instance.clone(), e.port.clone())).or_insert(0);
                e.index = Some(*k);
                *k += 1;
            }
        }
    }
    // Written by hand, so checked like a solver's answer.
    match crate::solve::checked::check(program, d, false) {
        Ok(d) => Ok(d.to_xml()),
        Err(diags) => Err(diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; ")),
    }
}

/// Topology spread (issue 19): `hosts` hosts in `zones` zones (host ranges,
/// one per zone), half as many `Web` instances as hosts and a tenth as many
/// `Db` instances, at most one instance per host, and both spread over the
/// zones with a skew of at most 1 (Kubernetes `maxSkew: 1`), written with
/// `max`/`min` over the zones so the grounding is linear in the hosts.
pub fn zone_spread(hosts: usize, zones: usize) -> String {
    let zones = zones.max(1);
    let mut s = String::new();
    s.push_str("// Topology spread over zones (issue 19), generated.\n");
    s.push_str("component Web(code = \"web.tgz\", ports = {})\n");
    s.push_str("component Db(code = \"db.tgz\", ports = {})\n");
    for z in 0..zones {
        let n = hosts / zones + usize::from(z < hosts % zones);
        if n > 0 {
            s.push_str(&format!("host z{z}h[{n}] = host(zone = \"z{z}\", cpu = {})\n", 4 + 4 * (z % 2)));
        }
    }
    let webs = hosts / 2;
    let dbs = (hosts / 10).max(1);
    s.push_str(&format!(
        "constraintset spread = constraintset {{
    card(instancesof Web in deployment) = {webs}
    card(instancesof Db in deployment) = {dbs}
    forall host h in deployment ( card(instancesof Web in h) + card(instancesof Db in h) <= 1 )
    max(zone z in deployment : card(instancesof Web in zone z))
        - min(zone z in deployment : card(instancesof Web in zone z)) <= 1
    max(zone z in deployment : card(instancesof Db in zone z))
        - min(zone z in deployment : card(instancesof Db in zone z)) <= 1
}}
"
    ));
    s
}
