//! Writing a [`Picture`] as SVG text, and the HTML page wrapper.

use std::collections::BTreeMap;
use std::fmt::Write;

use layout::core::geometry::Point;

use super::layout::{lay_out, row_label, EdgePath, Geometry, CHAR_W, HEAD_H, ROW_H};
use super::{LegendKind, Marks, Options, Picture};
use crate::ddd::Deployment;

/// Escapes text for XML/HTML content and double-quoted attributes. Control
/// characters that XML 1.0 forbids are replaced by U+FFFD.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// A number as SVG text: at most one decimal, no `-0`.
fn n(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    let r = if r == 0.0 || !r.is_finite() { 0.0 } else { r };
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

const STYLE: &str = r#"
text { fill: #222; }
.title { font-size: 16px; font-weight: bold; }
.panel-title { font-size: 14px; font-weight: bold; }
.caption { fill: #444; }
.frame rect { fill: #f3f6fb; stroke: #8aa0c0; stroke-dasharray: 6 3; }
.frame text { fill: #4a6080; font-style: italic; }
.host > rect { fill: #f6f6f6; stroke: #555; stroke-width: 1.2; }
.host > text { font-weight: bold; }
.host > text.empty { font-weight: normal; font-style: italic; fill: #888; }
.host.failed > rect { fill: #fde4e4; stroke: #c00; stroke-width: 2; stroke-dasharray: 6 3; }
.host.added > rect { stroke: #1a8a1a; stroke-width: 2.5; }
.instance rect { fill: #fff; stroke: #999; }
.instance.started rect { fill: #d9f5d9; stroke: #1a8a1a; stroke-width: 1.5; }
.instance.stopped rect, .instance.failed rect { fill: #fcd9d9; stroke: #c00; stroke-dasharray: 4 2; }
.instance.stopped text { text-decoration: line-through; }
.instance.moved rect { fill: #ffe8c2; stroke: #d07800; stroke-width: 1.5; }
.instance.restarted rect { fill: #dbe8ff; stroke: #2b5cc0; stroke-width: 1.5; }
.instance.violated rect { fill: #fcd9d9; stroke: #c00; stroke-width: 2; }
.instance.low rect { fill: #ffe0e0; stroke: #b02020; stroke-width: 1.5; }
.instance.shadow rect { fill: #eee6fa; stroke: #6a3fb0; stroke-dasharray: 4 2; }
.instance.shadow text { font-style: italic; }
.instance.active rect { fill: #fff; stroke: #999; }
.channel path { fill: none; stroke: #667; stroke-width: 1.3; }
.channel text { fill: #445; font-size: 11px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.channel.added path { stroke: #1a8a1a; stroke-width: 2.5; }
.channel.added text { fill: #1a6a1a; }
.channel.removed path { stroke: #c00; stroke-width: 2; stroke-dasharray: 6 4; }
.channel.removed text { fill: #a00; }
.channel.boundary path { stroke: #d05000; stroke-width: 3; }
.channel.boundary text { fill: #a04000; font-weight: bold; }
.more { fill: #667; font-size: 11px; font-style: italic; }
"#;

const MAX_LABELS: usize = 4;
const PANEL_GAP: f64 = 48.0;
const MARGIN: f64 = 16.0;

/// The whole SVG document.
pub(super) fn document(p: &Picture, opts: &Options) -> String {
    let group_by = opts.group_by.as_deref();
    let geos: Vec<Geometry> = p.panels.iter().map(|(d, m)| lay_out(d, m, group_by)).collect();
    let title_h = 30.0;
    let mut x = MARGIN;
    let mut body = String::new();
    let mut height: f64 = 0.0;
    for ((d, m), g) in p.panels.iter().zip(&geos) {
        let (s, w, h) = panel(d, m, g);
        let _ = writeln!(body, "<g class=\"panel\" transform=\"translate({},{})\">", n(x), n(MARGIN + title_h));
        body.push_str(&s);
        body.push_str("</g>\n");
        x += w + PANEL_GAP;
        height = height.max(h);
    }
    let mut width = (x - PANEL_GAP + MARGIN).max(320.0);
    let mut y = MARGIN + title_h + height + 12.0;
    if !p.legend.is_empty() {
        let (s, w, h) = legend(&p.legend);
        let _ = writeln!(body, "<g class=\"legend\" transform=\"translate({},{})\">", n(MARGIN), n(y));
        body.push_str(&s);
        body.push_str("</g>\n");
        y += h;
        width = width.max(w + 2.0 * MARGIN);
    }
    width = width.max(text_w(&p.title) * 1.4 + 2.0 * MARGIN);
    let height = y + MARGIN;
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"12\">",
        w = n(width.ceil()),
        h = n(height.ceil())
    );
    let _ = writeln!(o, "<title>{}</title>", escape(&p.title));
    let _ = writeln!(o, "<style>{STYLE}</style>");
    o.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#556\"/>\
         </marker></defs>\n",
    );
    let _ = writeln!(o, "<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"#fff\"/>");
    let _ =
        writeln!(o, "<text class=\"title\" x=\"{}\" y=\"{}\">{}</text>", n(MARGIN), n(MARGIN + 14.0), escape(&p.title));
    o.push_str(&body);
    o.push_str("</svg>\n");
    o
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

fn legend(items: &[(LegendKind, String, String)]) -> (String, f64, f64) {
    let mut s = String::new();
    let (mut x, mut y, mut w) = (0.0_f64, 0.0_f64, 0.0_f64);
    let max_w = 900.0;
    for (kind, class, text) in items {
        let item_w = 40.0 + text_w(text) + 24.0;
        if x > 0.0 && x + item_w > max_w {
            x = 0.0;
            y += 24.0;
        }
        let (c, t) = (escape(class), escape(text));
        let sample = match kind {
            LegendKind::Host => {
                format!("<g class=\"host {c}\"><rect x=\"{}\" y=\"{}\" width=\"32\" height=\"16\"/></g>", n(x), n(y))
            }
            LegendKind::Instance => format!(
                "<g class=\"instance {c}\"><rect x=\"{}\" y=\"{}\" width=\"32\" height=\"16\" rx=\"3\"/></g>",
                n(x),
                n(y)
            ),
            LegendKind::Channel => {
                format!("<g class=\"channel {c}\"><path d=\"M{},{} H{}\"/></g>", n(x), n(y + 8.0), n(x + 32.0))
            }
        };
        let _ = writeln!(
            s,
            "<g class=\"legend-item\">{sample}<text x=\"{}\" y=\"{}\">{t}</text></g>",
            n(x + 40.0),
            n(y + 12.0)
        );
        x += item_w;
        w = w.max(x);
    }
    (s, w, y + 24.0)
}

/// One panel: its title, group frames, host boxes with instances, channels,
/// captions. Returns the text, width and height.
fn panel(d: &Deployment, m: &Marks, g: &Geometry) -> (String, f64, f64) {
    let mut s = String::new();
    let top = if m.title.is_empty() {
        0.0
    } else {
        let _ = writeln!(s, "<text class=\"panel-title\" x=\"0\" y=\"0\">{}</text>", escape(&m.title));
        14.0
    };
    let _ = writeln!(s, "<g transform=\"translate(0,{})\">", n(top));
    for f in &g.frames {
        let _ = writeln!(
            s,
            "<g class=\"frame\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\"/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>",
            n(f.x),
            n(f.y),
            n(f.w),
            n(f.h),
            n(f.x + 10.0),
            n(f.y + 16.0),
            escape(&f.label)
        );
    }
    // Row centre of every instance, for channel ends.
    let mut row_y: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (k, h) in g.hosts.iter().enumerate() {
        let class = if h.class.is_empty() { String::new() } else { format!(" {}", escape(&h.class)) };
        let _ = writeln!(s, "<g class=\"host{class}\" data-host=\"{}\">", escape(&h.id));
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\"/>",
            n(h.x),
            n(h.y),
            n(h.w),
            n(h.h)
        );
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\">{}</text>", n(h.x + 8.0), n(h.y + 16.0), escape(&h.id));
        if h.rows.is_empty() {
            let _ = writeln!(
                s,
                "<text class=\"empty\" x=\"{}\" y=\"{}\">(no instances)</text>",
                n(h.x + 8.0),
                n(h.y + HEAD_H + 13.0)
            );
        }
        for (r_i, r) in h.rows.iter().enumerate() {
            let y = h.y + HEAD_H + ROW_H * r_i as f64;
            row_y.insert(r.id.as_str(), (k, y + 8.0));
            let class = if r.class.is_empty() { String::new() } else { format!(" {}", escape(&r.class)) };
            let _ = writeln!(
                s,
                "<g class=\"instance{class}\" data-instance=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" \
                 height=\"16\" rx=\"3\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                escape(&r.id),
                n(h.x + 8.0),
                n(y),
                n(h.w - 16.0),
                n(h.x + 12.0),
                n(y + 12.0),
                escape(&row_label(r))
            );
        }
        s.push_str("</g>\n");
    }
    // Channels.
    // An end is its port (`cin[0]`), prefixed by the component
    // (`Router.cin[0]`) when its host holds more than one instance.
    let component: BTreeMap<&str, &str> = d.instances.iter().map(|i| (i.id.as_str(), i.component.as_str())).collect();
    let crowded: BTreeMap<&str, bool> = row_y.iter().map(|(id, (k, _))| (*id, g.hosts[*k].rows.len() > 1)).collect();
    let end_label = |e: &crate::ddd::End| match component.get(e.instance.as_str()) {
        Some(c) if crowded.get(e.instance.as_str()).copied().unwrap_or(false) => format!("{c}.{}", e.port_label()),
        _ => e.port_label(),
    };
    let mut per_pair: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut per_host_arc: BTreeMap<usize, usize> = BTreeMap::new();
    let mut extra_right: f64 = 0.0;
    let mut more: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut degree: BTreeMap<usize, usize> = BTreeMap::new();
    for &(a, b) in g.edges.keys() {
        *degree.entry(a).or_insert(0) += 1;
        *degree.entry(b).or_insert(0) += 1;
    }
    // Where each host pair's labels go: the block of its labels (at most
    // MAX_LABELS lines and a "+N more") slides along the edge until it
    // covers no host box and no other pair's block.
    let mut blocks: BTreeMap<(usize, usize), (usize, f64)> = BTreeMap::new();
    for c in &d.channels {
        let (Some(&(a, _)), Some(&(b, _))) = (row_y.get(c.from.instance.as_str()), row_y.get(c.to.instance.as_str()))
        else {
            continue;
        };
        if a != b {
            let label = format!("{} — {}", end_label(&c.from), end_label(&c.to));
            let e = blocks.entry((a.min(b), a.max(b))).or_insert((0, 0.0));
            e.0 += 1;
            e.1 = e.1.max(text_w(&label) * 11.0 / 12.0);
        }
    }
    let mut placed: Vec<Rect> = vec![];
    let mut label_at: BTreeMap<(usize, usize), Point> = BTreeMap::new();
    for (&pair, &(count, width)) in &blocks {
        let Some(e) = g.edges.get(&pair) else { continue };
        let lines = count.min(MAX_LABELS) + usize::from(count > MAX_LABELS);
        let rect_at =
            |p: Point| Rect { x: p.x - width / 2.0 - 2.0, y: p.y - 11.0, w: width + 4.0, h: 13.0 * lines as f64 + 2.0 };
        let first = label_t(e, pair.0, pair.1, &degree);
        let candidates = std::iter::once(first).chain((1..=9).flat_map(|k| {
            let d = 0.05 * k as f64;
            [first + d, first - d]
        }));
        let free = |r: &Rect| {
            !g.hosts.iter().any(|h| r.meets(&Rect { x: h.x, y: h.y, w: h.w, h: h.h }))
                && !placed.iter().any(|q| r.meets(q))
        };
        let t = candidates.filter(|t| (0.05..=0.95).contains(t)).find(|&t| free(&rect_at(e.at(t)))).unwrap_or(first);
        let p = e.at(t);
        placed.push(rect_at(p));
        label_at.insert(pair, p);
    }
    for c in &d.channels {
        let (Some(&(a, ya)), Some(&(b, yb))) = (row_y.get(c.from.instance.as_str()), row_y.get(c.to.instance.as_str()))
        else {
            continue;
        };
        let key = super::channel_key(c);
        let class = m.channels.get(&key).map(|c| format!(" {}", escape(c))).unwrap_or_default();
        let arrow = if c.directed { " marker-end=\"url(#arrow)\"" } else { "" };
        let arrow_start = if c.directed { " marker-start=\"url(#arrow)\"" } else { "" };
        // Ends in path order: `Client.out → Router.cin[0]`; `—` when undirected.
        let (sep, back) = if c.directed { ("→", "←") } else { ("—", "—") };
        let title = format!("{}: {} {sep} {}", c.id, c.from, c.to);
        let _ = write!(
            s,
            "<g class=\"channel{class}\" data-channel=\"{}\"><title>{}</title>",
            escape(&c.id),
            escape(&title)
        );
        if a == b {
            // An arc on the right of the host box.
            let h = &g.hosts[a];
            let k = per_host_arc.entry(a).or_insert(0);
            let bulge = 22.0 + 8.0 * (*k % 4) as f64;
            *k += 1;
            let x = h.x + h.w;
            let _ = write!(
                s,
                "<path d=\"M{x},{ya} C{xb},{ya} {xb},{yb} {x},{yb}\"{arrow}/>",
                x = n(x),
                xb = n(x + bulge),
                ya = n(ya),
                yb = n(yb)
            );
            let label = format!("{} {sep} {}", end_label(&c.from), end_label(&c.to));
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                n(x + bulge * 0.75 + 2.0),
                n((ya + yb) / 2.0 + 4.0),
                escape(&label)
            );
            extra_right = extra_right.max(x + bulge + text_w(&label));
        } else if let Some(e) = g.edges.get(&(a.min(b), a.max(b))) {
            let k = per_pair.entry((a.min(b), a.max(b))).or_insert(0);
            let slot = *k;
            *k += 1;
            // Parallel channels side by side: 0, +4, -4, +8, -8 px.
            let off = [0.0, 4.0, -4.0, 8.0, -8.0][slot % 5];
            let forward = e.from == a;
            let d_attr = path_d(&e.path, off);
            let _ = write!(s, "<path d=\"{d_attr}\"{}/>", if forward { arrow } else { arrow_start });
            if slot < MAX_LABELS {
                let pair = (a.min(b), a.max(b));
                let mid = label_at.get(&pair).copied().unwrap_or_else(|| e.at(label_t(e, pair.0, pair.1, &degree)));
                let label = if forward {
                    format!("{} {sep} {}", end_label(&c.from), end_label(&c.to))
                } else {
                    format!("{} {back} {}", end_label(&c.to), end_label(&c.from))
                };
                let _ = write!(
                    s,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    n(mid.x),
                    n(mid.y + 13.0 * slot as f64),
                    escape(&label)
                );
            } else {
                *more.entry((a.min(b), a.max(b))).or_insert(0) += 1;
            }
        }
        s.push_str("</g>\n");
    }
    for (pair, count) in &more {
        if let Some(e) = g.edges.get(pair) {
            let mid = label_at.get(pair).copied().unwrap_or_else(|| e.at(label_t(e, pair.0, pair.1, &degree)));
            let _ = writeln!(
                s,
                "<text class=\"more\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">+{count} more</text>",
                n(mid.x),
                n(mid.y + 13.0 * MAX_LABELS as f64)
            );
        }
    }
    s.push_str("</g>\n");
    let mut y = top + g.h + 20.0;
    let mut w = g.w.max(extra_right).max(text_w(&m.title) * 1.2);
    for c in &m.captions {
        let _ = writeln!(s, "<text class=\"caption\" x=\"0\" y=\"{}\">{}</text>", n(y), escape(c));
        y += 16.0;
        w = w.max(text_w(c));
    }
    (s, w, y)
}

/// A box of the picture, to keep labels off host boxes and each other.
#[derive(Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn meets(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// Where along the edge its labels go first: a fifth or two fifths of the
/// way from the end at the host with fewer neighbours (edges fan out there,
/// so labels spread), mid-way when both have as many.
fn label_t(e: &EdgePath, a: usize, b: usize, degree: &BTreeMap<usize, usize>) -> f64 {
    let (from, other) = if e.from == a { (a, b) } else { (b, a) };
    let (df, dt) = (degree.get(&from).copied().unwrap_or(0), degree.get(&other).copied().unwrap_or(0));
    // Neighbouring edges alternate between two distances, so that their
    // labels do not sit side by side.
    let stagger = if (a + b) % 2 == 0 { 0.0 } else { 0.18 };
    match df.cmp(&dt) {
        std::cmp::Ordering::Less => 0.22 + stagger,
        std::cmp::Ordering::Greater => 0.78 - stagger,
        std::cmp::Ordering::Equal => 0.5,
    }
}

/// The SVG path of cubic segments, shifted right by `off`.
fn path_d(path: &[[Point; 4]], off: f64) -> String {
    let p = |q: Point| format!("{},{}", n(q.x + off), n(q.y));
    let mut d = String::new();
    for (k, [p0, c1, c2, p1]) in path.iter().enumerate() {
        if k == 0 {
            let _ = write!(d, "M{}", p(*p0));
        }
        let _ = write!(d, " C{} {} {}", p(*c1), p(*c2), p(*p1));
    }
    d
}

/// A self-contained HTML page: `title` and `body` (already HTML) with the
/// given CSS. No scripts, no external resources (the page's content
/// security policy forbids them); also well-formed XML.
pub fn html_page(title: &str, css: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"/>\n\
         <title>{}</title>\n<style>{css}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}
