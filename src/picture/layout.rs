//! Geometry of one panel: host boxes (sized by their instance rows), placed
//! by `layout-rs` per connected group of hosts, groups packed in rows; the
//! paths of the host-to-host edges.

use std::collections::BTreeMap;

use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::{Point, Position};
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::Marks;
use crate::ddd::Deployment;

/// Width of one character of the 12px monospace font, in pixels.
pub(super) const CHAR_W: f64 = 7.3;
/// Height of an instance row.
pub(super) const ROW_H: f64 = 20.0;
/// Height of a host box's header (its id).
pub(super) const HEAD_H: f64 = 24.0;
const GAP: f64 = 36.0;
const HALO_X: f64 = 64.0;
const HALO_Y: f64 = 120.0;
const FRAME_PAD: f64 = 16.0;
const FRAME_HEAD: f64 = 22.0;

/// An instance row in a host box.
pub(super) struct Row {
    pub id: String,
    pub class: String,
    pub note: Option<String>,
}

/// A host box: top-left corner and size, its rows.
pub(super) struct HostBox {
    pub id: String,
    pub class: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub rows: Vec<Row>,
}

/// A group frame (`--group-by`).
pub(super) struct Frame {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A host-to-host edge: cubic Bézier segments `(start, control, control,
/// end)`, from the box of `from` to the other host's box.
pub(super) struct EdgePath {
    pub from: usize,
    pub path: Vec<[Point; 4]>,
}

impl EdgePath {
    /// The point at `t` (0 = start, 1 = end) of the path, by segment.
    pub fn at(&self, t: f64) -> Point {
        let m = self.path.len();
        if m == 0 {
            return Point::zero();
        }
        let x = (t.clamp(0.0, 1.0) * m as f64).min(m as f64 - 1e-9);
        let k = x.floor() as usize;
        let u = x - k as f64;
        let [p0, c1, c2, p1] = self.path[k];
        let v = 1.0 - u;
        let (a, b, c, d) = (v * v * v, 3.0 * v * v * u, 3.0 * v * u * u, u * u * u);
        Point::new(a * p0.x + b * c1.x + c * c2.x + d * p1.x, a * p0.y + b * c1.y + c * c2.y + d * p1.y)
    }
}

/// `layout-rs` paths (`M p0 C c0, c1 p1 S c p …` as `[(p0, c0), (c1, p1),
/// (c, p), …]`) as explicit cubic segments.
fn segments(path: &[(Point, Point)]) -> Vec<[Point; 4]> {
    let mut out: Vec<[Point; 4]> = vec![];
    if path.len() < 2 {
        return out;
    }
    out.push([path[0].0, path[0].1, path[1].0, path[1].1]);
    for q in path.iter().skip(2) {
        if let Some(&[_, _, prev_c2, prev_end]) = out.last() {
            let c1 = Point::new(2.0 * prev_end.x - prev_c2.x, 2.0 * prev_end.y - prev_c2.y);
            out.push([prev_end, c1, q.0, q.1]);
        }
    }
    out
}

fn reversed(path: &[[Point; 4]]) -> Vec<[Point; 4]> {
    path.iter().rev().map(|&[a, b, c, d]| [d, c, b, a]).collect()
}

/// A laid-out panel.
pub(super) struct Geometry {
    pub hosts: Vec<HostBox>,
    pub frames: Vec<Frame>,
    /// Keyed by the host pair (lower index first).
    pub edges: BTreeMap<(usize, usize), EdgePath>,
    pub w: f64,
    pub h: f64,
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

pub(super) fn row_label(r: &Row) -> String {
    match &r.note {
        Some(n) => format!("{}  {n}", r.id),
        None => r.id.clone(),
    }
}

/// Lays out a deployment's hosts and instances.
pub(super) fn lay_out(d: &Deployment, marks: &Marks, group_by: Option<&str>) -> Geometry {
    // Hosts, then hosts only named by instances (invalid DDDs), in order.
    let mut host_ids: Vec<String> = d.hosts.iter().map(|h| h.id.clone()).collect();
    for i in d.instances.iter().map(|i| &i.host).chain(marks.extra.iter().map(|(i, _)| &i.host)) {
        if !host_ids.contains(i) {
            host_ids.push(i.clone());
        }
    }
    let mut hosts: Vec<HostBox> = host_ids
        .iter()
        .map(|h| {
            let mut rows: Vec<Row> = d
                .instances
                .iter()
                .filter(|i| &i.host == h)
                .map(|i| Row {
                    id: i.id.clone(),
                    class: marks.instances.get(&i.id).cloned().unwrap_or_default(),
                    note: marks.notes.get(&i.id).cloned(),
                })
                .collect();
            rows.extend(marks.extra.iter().filter(|(i, _)| &i.host == h).map(|(i, c)| Row {
                id: i.id.clone(),
                class: c.clone(),
                note: None,
            }));
            let empty = if rows.is_empty() { text_w("(no instances)") + 8.0 } else { 0.0 };
            let widest =
                rows.iter().map(|r| text_w(&row_label(r)) + 16.0).fold((text_w(h) + 16.0).max(empty), f64::max);
            let w = (widest + 16.0).max(110.0).ceil();
            let h_px = HEAD_H + ROW_H * rows.len().max(1) as f64 + 8.0;
            HostBox {
                id: h.clone(),
                class: marks.hosts.get(h).cloned().unwrap_or_default(),
                x: 0.0,
                y: 0.0,
                w,
                h: h_px,
                rows,
            }
        })
        .collect();
    let index: BTreeMap<&str, usize> = host_ids.iter().enumerate().map(|(k, h)| (h.as_str(), k)).collect();
    let inst_host: BTreeMap<&str, usize> =
        d.instances.iter().filter_map(|i| index.get(i.host.as_str()).map(|&k| (i.id.as_str(), k))).collect();
    // Host pairs joined by channels, directed as their first channel.
    let mut pairs: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    for c in &d.channels {
        if let (Some(&a), Some(&b)) = (inst_host.get(c.from.instance.as_str()), inst_host.get(c.to.instance.as_str())) {
            if a != b {
                pairs.entry((a.min(b), a.max(b))).or_insert((a, b));
            }
        }
    }

    // Groups, in order of their first host.
    let mut groups: Vec<(Option<String>, Vec<usize>)> = vec![];
    for (k, h) in host_ids.iter().enumerate() {
        let key = group_by.map(|attr| match d.host(h).and_then(|x| x.attr(attr)) {
            Some(v) => format!("{attr} = {}", v.value_text()),
            None => format!("(no {attr})"),
        });
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(k),
            None => groups.push((key, vec![k])),
        }
    }

    let mut edges = BTreeMap::new();
    let mut frames = vec![];
    // Each group as a block of blocks (its connected parts).
    let mut group_blocks: Vec<Block> = vec![];
    for (label, members) in &groups {
        let parts = components(members, &pairs);
        let mut blocks: Vec<Block> =
            parts.iter().map(|part| layout_part(part, &pairs, &mut hosts, &mut edges)).collect();
        let (w, h) = pack(&mut blocks, &mut hosts, &mut edges, &mut frames);
        let mut members_all: Vec<usize> = blocks.iter().flat_map(|b| b.hosts.iter().copied()).collect();
        members_all.sort_unstable();
        let mut frames_all: Vec<usize> = blocks.iter().flat_map(|b| b.frames.iter().copied()).collect();
        frames_all.sort_unstable();
        let mut block = Block { hosts: members_all, frames: frames_all, edges: vec![], w, h };
        block.edges = pairs.keys().filter(|p| edges.contains_key(*p) && block.hosts.contains(&p.0)).copied().collect();
        if let Some(label) = label {
            // Frame the group: shift its content by the padding.
            shift(&block, FRAME_PAD, FRAME_PAD + FRAME_HEAD, &mut hosts, &mut edges, &mut frames);
            block.w = (w + 2.0 * FRAME_PAD).max(text_w(label) + 2.0 * FRAME_PAD);
            block.h = h + 2.0 * FRAME_PAD + FRAME_HEAD;
            frames.push(Frame { label: label.clone(), x: 0.0, y: 0.0, w: block.w, h: block.h });
            block.frames.push(frames.len() - 1);
        }
        group_blocks.push(block);
    }
    let (w, h) = pack(&mut group_blocks, &mut hosts, &mut edges, &mut frames);

    // Edges between parts or groups: straight, border to border.
    for (&(a, b), &(from, to)) in &pairs {
        if edges.contains_key(&(a, b)) {
            continue;
        }
        let (p, q) = (center(&hosts[from]), center(&hosts[to]));
        let s = border(&hosts[from], q);
        let e = border(&hosts[to], p);
        edges.insert((a, b), EdgePath { from, path: vec![[s, s, e, e]] });
    }
    Geometry { hosts, frames, edges, w, h }
}

fn center(h: &HostBox) -> Point {
    Point::new(h.x + h.w / 2.0, h.y + h.h / 2.0)
}

/// Where the segment from the box's center towards `to` leaves the box.
fn border(h: &HostBox, to: Point) -> Point {
    let c = center(h);
    let (dx, dy) = (to.x - c.x, to.y - c.y);
    if dx == 0.0 && dy == 0.0 {
        return c;
    }
    let tx = if dx != 0.0 { (h.w / 2.0) / dx.abs() } else { f64::INFINITY };
    let ty = if dy != 0.0 { (h.h / 2.0) / dy.abs() } else { f64::INFINITY };
    let t = tx.min(ty).min(1.0);
    Point::new(c.x + dx * t, c.y + dy * t)
}

/// A placed set of hosts, frames and edges with its own origin at (0, 0).
struct Block {
    hosts: Vec<usize>,
    frames: Vec<usize>,
    edges: Vec<(usize, usize)>,
    w: f64,
    h: f64,
}

fn shift(
    b: &Block,
    dx: f64,
    dy: f64,
    hosts: &mut [HostBox],
    edges: &mut BTreeMap<(usize, usize), EdgePath>,
    frames: &mut [Frame],
) {
    for &k in &b.hosts {
        hosts[k].x += dx;
        hosts[k].y += dy;
    }
    for &f in &b.frames {
        frames[f].x += dx;
        frames[f].y += dy;
    }
    for e in &b.edges {
        if let Some(p) = edges.get_mut(e) {
            for seg in p.path.iter_mut() {
                for q in seg.iter_mut() {
                    *q = Point::new(q.x + dx, q.y + dy);
                }
            }
        }
    }
}

/// Places blocks in rows no wider than about 1.6 × the side of a square of
/// their total area (at least the widest block); returns the size.
fn pack(
    blocks: &mut [Block],
    hosts: &mut [HostBox],
    edges: &mut BTreeMap<(usize, usize), EdgePath>,
    frames: &mut [Frame],
) -> (f64, f64) {
    let area: f64 = blocks.iter().map(|b| (b.w + GAP) * (b.h + GAP)).sum();
    let widest = blocks.iter().map(|b| b.w).fold(0.0, f64::max);
    let max_w = (area.sqrt() * 1.6).max(widest).max(400.0);
    let (mut x, mut y, mut row_h, mut w) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    for b in blocks.iter() {
        if x > 0.0 && x + b.w > max_w {
            x = 0.0;
            y += row_h + GAP;
            row_h = 0.0;
        }
        shift(b, x, y, hosts, edges, frames);
        x += b.w + GAP;
        w = w.max(x - GAP);
        row_h = row_h.max(b.h);
    }
    (w, y + row_h)
}

/// The connected parts of `members` through `pairs`, each in host order,
/// ordered by their first host.
fn components(members: &[usize], pairs: &BTreeMap<(usize, usize), (usize, usize)>) -> Vec<Vec<usize>> {
    let mut part: BTreeMap<usize, usize> = members.iter().map(|&m| (m, m)).collect();
    fn root(part: &mut BTreeMap<usize, usize>, mut x: usize) -> usize {
        while let Some(&p) = part.get(&x) {
            if p == x {
                break;
            }
            x = p;
        }
        x
    }
    for &(a, b) in pairs.keys() {
        if part.contains_key(&a) && part.contains_key(&b) {
            let (ra, rb) = (root(&mut part, a), root(&mut part, b));
            if ra != rb {
                part.insert(ra.max(rb), ra.min(rb));
            }
        }
    }
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &m in members {
        let r = root(&mut part, m);
        out.entry(r).or_default().push(m);
    }
    let mut v: Vec<Vec<usize>> = out.into_values().collect();
    v.sort_by_key(|p| p.first().copied().unwrap_or(usize::MAX));
    v
}

/// Collects what `layout-rs` draws: the node boxes (by their index in the
/// `properties`) and the edge paths.
#[derive(Default)]
struct Capture {
    rects: BTreeMap<usize, (Point, Point)>,
    arrows: BTreeMap<usize, Vec<(Point, Point)>>,
}

impl RenderBackend for Capture {
    fn draw_rect(&mut self, xy: Point, size: Point, _: &StyleAttr, p: Option<String>, _: Option<ClipHandle>) {
        if let Some(k) = p.and_then(|p| p.parse().ok()) {
            self.rects.insert(k, (xy, size));
        }
    }
    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        _: (bool, bool),
        _: &StyleAttr,
        p: Option<String>,
        _: &str,
    ) {
        if let Some(k) = p.and_then(|p| p.parse().ok()) {
            self.arrows.insert(k, path.to_vec());
        }
    }
    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// Lays out one connected part with `layout-rs` (a single host needs no
/// layout); falls back to a row if the library fails.
fn layout_part(
    part: &[usize],
    pairs: &BTreeMap<(usize, usize), (usize, usize)>,
    hosts: &mut [HostBox],
    edges: &mut BTreeMap<(usize, usize), EdgePath>,
) -> Block {
    let in_part = |k: &usize| part.binary_search(k).is_ok();
    let my_pairs: Vec<((usize, usize), (usize, usize))> =
        pairs.iter().filter(|(p, _)| in_part(&p.0) && in_part(&p.1)).map(|(p, d)| (*p, *d)).collect();
    if part.len() > 1 {
        let captured = std::panic::catch_unwind(|| {
            let mut vg = VisualGraph::new(Orientation::TopToBottom);
            let mut handles = BTreeMap::new();
            for &k in part {
                let size = Point::new(hosts[k].w, hosts[k].h);
                let mut e = Element::create_with_properties(
                    ShapeKind::Box(String::new()),
                    StyleAttr::simple(),
                    Orientation::TopToBottom,
                    size,
                    k.to_string(),
                );
                // More room between ranks than the library's default, for
                // the port labels.
                e.pos = Position::new(Point::zero(), size, Point::zero(), Point::new(HALO_X, HALO_Y));
                handles.insert(k, vg.add_node(e));
            }
            for (n, (_, (from, to))) in my_pairs.iter().enumerate() {
                if let (Some(&a), Some(&b)) = (handles.get(from), handles.get(to)) {
                    vg.add_edge(Arrow::simple_with_properties("", n.to_string()), a, b);
                }
            }
            let mut cap = Capture::default();
            vg.do_it(false, false, false, &mut cap);
            cap
        });
        if let Ok(cap) = captured {
            if part.iter().all(|k| cap.rects.contains_key(k)) {
                let mut min = Point::new(f64::INFINITY, f64::INFINITY);
                let mut max = Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY);
                let mut grow = |p: Point| {
                    min = Point::new(min.x.min(p.x), min.y.min(p.y));
                    max = Point::new(max.x.max(p.x), max.y.max(p.y));
                };
                for (xy, size) in cap.rects.values() {
                    grow(*xy);
                    grow(xy.add(*size));
                }
                for path in cap.arrows.values() {
                    for (a, b) in path {
                        grow(*a);
                        grow(*b);
                    }
                }
                for (&k, (xy, _)) in &cap.rects {
                    hosts[k].x = (xy.x - min.x).round();
                    hosts[k].y = (xy.y - min.y).round();
                }
                let mut block_edges = vec![];
                for (n, (key, (from, to))) in my_pairs.iter().enumerate() {
                    if let Some(path) = cap.arrows.get(&n).filter(|p| p.len() >= 2) {
                        let path: Vec<(Point, Point)> = path
                            .iter()
                            .map(|(a, b)| (Point::new(a.x - min.x, a.y - min.y), Point::new(b.x - min.x, b.y - min.y)))
                            .collect();
                        let mut path = segments(&path);
                        // Make the path start at `from` (the library may
                        // have turned the edge round).
                        if let Some(first) = path.first().map(|s| s[0]) {
                            if first.distance_to(center(&hosts[*to])) < first.distance_to(center(&hosts[*from])) {
                                path = reversed(&path);
                            }
                        }
                        edges.insert(*key, EdgePath { from: *from, path });
                        block_edges.push(*key);
                    }
                }
                return Block {
                    hosts: part.to_vec(),
                    frames: vec![],
                    edges: block_edges,
                    w: (max.x - min.x).ceil(),
                    h: (max.y - min.y).ceil(),
                };
            }
        }
    }
    // A single host, or the fallback: a row of boxes.
    let mut x = 0.0;
    let mut h = 0.0_f64;
    for &k in part {
        hosts[k].x = x;
        hosts[k].y = 0.0;
        x += hosts[k].w + GAP;
        h = h.max(hosts[k].h);
    }
    Block { hosts: part.to_vec(), frames: vec![], edges: vec![], w: (x - GAP).max(0.0), h }
}
