/* The live page of `deladas manage` (page.rs, docs/manager.md "The live page").
 * Reads GET /page/stream (server-sent events) with fetch, so that the token
 * travels in the Authorization header, never in a URL. Event data is only
 * ever set as text; the one piece of markup is the manager's own SVG. */
'use strict';
(function () {
  const KEY = 'deladas-manager-token';
  const $ = (id) => document.getElementById(id);
  const page = { views: 0, events: 0, connected: false, generation: null };
  window.deladasPage = page;

  let token = sessionStorage.getItem(KEY);
  const m = /^#token=(.+)$/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem(KEY, token);
    // Out of the address bar, the history and any bookmark.
    history.replaceState(null, '', location.pathname + location.search);
  }

  function status(cls, text) {
    const s = $('status');
    s.className = 'status ' + cls;
    s.textContent = text;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const OPS = { '+': 'op-add', '-': 'op-del', '~': 'op-mod', ' ': 'op-keep', '#': 'op-sum' };

  function showPlan(id, p) {
    const pre = $(id);
    const meta = $(id + '-meta');
    pre.replaceChildren();
    if (!p) {
      pre.textContent = 'none';
      meta.textContent = '';
      return;
    }
    meta.textContent = 'against generation ' + p.generation + ' · ' + p.status + ' · ' + p.reason +
      ' · ' + new Date(p.time_ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
    for (const l of p.lines) {
      pre.appendChild(el('span', OPS[l.op] || '', (l.op === '#' ? '' : l.op + ' ') + l.text));
    }
  }

  function showExplanation(x) {
    const sec = $('explanation');
    sec.hidden = !x;
    if (!x) return;
    sec.querySelector('.message').textContent = x.message || '';
    sec.querySelector('.action').textContent = x.action || '';
    const src = sec.querySelector('.source');
    src.replaceChildren();
    if (x.source && x.source.length) src.appendChild(el('span', 'gap', x.file + ':'));
    for (const l of x.source || []) {
      if (l === null) {
        src.appendChild(el('span', 'gap', '   …'));
      } else {
        src.appendChild(el('span', l.hit ? 'hit' : '', String(l.line).padStart(4) + ' | ' + l.text));
      }
    }
    const ul = sec.querySelector('.repairs');
    ul.replaceChildren();
    for (const r of x.repairs || []) ul.appendChild(el('li', '', 'help: ' + r));
    for (const r of x.resources || []) ul.appendChild(el('li', '', 'note: ' + r));
    for (const d of x.diagnostics || []) ul.appendChild(el('li', '', (d.code || '') + ' ' + (d.message || '')));
  }

  function showView(v) {
    page.views += 1;
    page.generation = v.generation;
    // The manager's SVG (src/picture: every piece of input text escaped).
    $('picture').innerHTML = v.svg;
    let text = 'goal ' + v.goal + ' · generation ' + v.generation;
    if (v.plan_in_progress) text += ' · plan step ' + v.step + ' in progress (' + (v.plan_reason || '') + ')';
    if (v.frozen) text += ' · FROZEN: ' + v.frozen;
    $('summary').textContent = text;
    const ul = $('hosts');
    ul.replaceChildren();
    for (const h of v.hosts) {
      const n = h.state === 'failed' ? '' : ' (' + h.instances + ')';
      const li = el('li', h.state, h.host + ' ' + h.state + n);
      li.dataset.host = h.host;
      ul.appendChild(li);
    }
    showPlan('last-plan', v.last_plan);
    showPlan('pending-plan', v.pending_plan);
    showExplanation(v.explanation);
  }

  const SHOWN = ['host', 'instance', 'state', 'reason', 'doing', 'after', 'why', 'failed_hosts', 'silent_ms',
    'resolve_ms', 'restarts', 'last_exit', 'action'];

  function addEvent(e) {
    page.events += 1;
    const d = e.data || {};
    const li = el('li', e.kind);
    li.value = e.seq;
    li.dataset.seq = e.seq;
    li.appendChild(el('span', 'time', new Date(e.time_ms).toISOString().slice(11, 23) + ' '));
    li.appendChild(el('span', 'gen', 'g' + e.generation + ' '));
    li.appendChild(el('span', 'kind', e.kind));
    const parts = [];
    for (const k of SHOWN) {
      const x = d[k];
      if (x === undefined || x === null) continue;
      const shown = Array.isArray(x) ? x.join(', ') : typeof x === 'number' && !Number.isInteger(x) ? x.toFixed(1) : x;
      parts.push(k + ': ' + shown);
    }
    if (d.explanation && d.explanation.message) parts.push(d.explanation.message);
    if (parts.length) li.appendChild(el('span', 'data', ' — ' + parts.join(' · ')));
    const ol = $('timeline');
    ol.insertBefore(li, ol.firstChild);
    while (ol.children.length > 500) ol.removeChild(ol.lastChild);
  }

  function dispatch(block) {
    let kind = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) kind = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) return;
    const v = JSON.parse(data.join('\n'));
    if (kind === 'view') showView(v);
    else if (kind === 'event') addEvent(v);
  }

  let delay = 500;
  let running = false;

  async function connect() {
    if (running) return;
    running = true;
    for (;;) {
      status('connecting', 'connecting…');
      try {
        const res = await fetch('/page/stream', {
          headers: token ? { Authorization: 'Bearer ' + token } : {},
          cache: 'no-store',
        });
        if (res.status === 401) {
          status('denied', 'this manager needs its token');
          $('login').hidden = false;
          running = false;
          return;
        }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        $('login').hidden = true;
        // A fresh stream sends the view and the timeline again.
        $('timeline').replaceChildren();
        page.connected = true;
        status('live', 'live');
        delay = 500;
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (err) {
        status('lost', 'connection lost (' + err.message + '): retrying');
      }
      page.connected = false;
      status('lost', 'connection lost: retrying');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem(KEY, token);
    $('token').value = '';
    connect();
  });

  connect();
})();
