// Pipewright web console. Plain JavaScript, no build step, no third-party code.
//
// It talks to the server only through the public API, exactly like the CLIs:
// POST / with X-Amz-Target (the CodePipeline operations, plus the extensions
// Pipewright_20261125.GetStageRetryPlan and ListPipelineSummaries), and
// GET /logs/<actionExecutionId> (followed live, and the raw log's download
// link). So it can never show something the API does not.
//
// Sign-in: when the server runs with --auth-keys-file, GET /console/api/session
// says {"authRequired": true} and the console asks for an access key id and
// secret, which POST /console/api/session exchanges for an HttpOnly session
// cookie and a CSRF token. The token stays in memory only (a reload asks the
// server for it again) and goes with every API call as X-Pw-Csrf. A 401/403
// from the server (session expired or signed out) returns to the sign-in form.
//
// Pages (hash routes):
//   #/                                          pipelines
//   #/pipelines/<name>                          one pipeline, live
//   #/pipelines/<name>/executions               execution history
//   #/pipelines/<name>/executions/<id>          one execution: stages, attempts, Retry, timeline, variables
//   #/pipelines/<name>/executions/<id>/logs/<a> one action's log, followed live
'use strict';

(() => {
  const CODEPIPELINE = 'CodePipeline_20150709.';
  const PIPEWRIGHT = 'Pipewright_20261125.';
  const SESSION_URL = '/console/api/session';

  // The console session: required = the server wants sign-in; csrf and
  // identity are set while signed in.
  const session = { required: false, csrf: '', identity: '' };

  // ---- Live updates -------------------------------------------------------
  // Polling, not server-sent events, and only while someone is looking:
  //  * Cost per tab: the pipeline page asks for one GetPipelineState a second,
  //    a read-only snapshot the engine serves to every CLI; it fetches more
  //    (recent executions, retry plans) only when that snapshot changed.
  //  * No held connections: an event stream would occupy one of the HTTP
  //    server's few worker threads (cpp-httplib: a fixed pool, 8 on a
  //    2-core machine) for as long as a tab stays open, so a dozen forgotten
  //    tabs could starve the API. A poll is a short request; between polls
  //    the server owes a tab nothing. That holds only if the server lets go
  //    of idle connections: cpp-httplib parks a worker on an idle keep-alive
  //    connection for up to 5 s, so with the server's defaults each visible
  //    tab still pins a worker (measured: 12 tabs delay other clients by up
  //    to ~3 s; with keep-alive max count 1 in api/http_server.cc, 20 tabs
  //    cost them nothing measurable).
  //  * Visible tabs only: while document.visibilityState is 'hidden' a tab
  //    backs off to one poll every HIDDEN_MS (enough to keep its title
  //    current) and catches up at once when shown again.
  //  * Polls never overlap (the next is scheduled after the answer), and
  //    failures back off exponentially up to HIDDEN_MS.
  const HIDDEN_MS = 30000;

  // ---- Small DOM helpers ----------------------------------------------------
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const $ = (sel, root = document) => root.querySelector(sel);
  const enc = encodeURIComponent;
  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  // The data-focus key of a control that a re-render rebuilt disabled (a
  // retry plan briefly unavailable) or left out: the focus goes to its
  // stand-in, or nowhere, and the next render that shows the control
  // enabled gives it back, unless the user has moved on meanwhile.
  let lostFocus = null;
  let focusing = false;
  const nothingFocused = () => !document.activeElement || document.activeElement === document.body;
  const standsIn = (el, key) => Boolean(el && el.getAttribute) &&
    (el.getAttribute('data-focus-also') || '').split(' ').includes(key);
  document.addEventListener('focusin', () => { if (!focusing) lostFocus = null; }, true);
  document.addEventListener('pointerdown', () => { lostFocus = null; }, true);
  function focusEl(el) {
    focusing = true;
    try {
      el.focus({ preventScroll: true });
    } finally {
      focusing = false;
    }
    return document.activeElement === el;
  }

  // Replaces `container`'s children by `items` ({key, sig, render}) and keeps
  // every child whose key and signature are unchanged, so a poll that changed
  // nothing touches nothing: hover, focus and text selection survive it. If
  // the focused element is rebuilt, the new element with the same data-focus
  // takes the focus.
  const sigs = new WeakMap();
  function reconcile(container, items) {
    const active = document.activeElement;
    const focusKey = active && container.contains(active) ? active.getAttribute('data-focus') : null;
    const old = new Map();
    const stray = [];
    for (const c of container.children) {
      const k = c.getAttribute('data-key');
      if (k === null) stray.push(c);
      else old.set(k, c);
    }
    let prev = null;
    for (const it of items) {
      let el = old.get(it.key);
      old.delete(it.key);
      if (!el || sigs.get(el) !== it.sig) {
        const fresh = it.render();
        fresh.setAttribute('data-key', it.key);
        sigs.set(fresh, it.sig);
        if (el) el.replaceWith(fresh);
        el = fresh;
      }
      const want = prev ? prev.nextSibling : container.firstChild;
      if (el !== want) container.insertBefore(el, want);
      prev = el;
    }
    for (const el of old.values()) el.remove();
    for (const el of stray) el.remove();
    if (focusKey && !container.contains(document.activeElement)) refocus(focusKey, container);
    if (lostFocus && (nothingFocused() || standsIn(document.activeElement, lostFocus))) {
      const el = container.querySelector(`[data-focus="${CSS.escape(lostFocus)}"]`);
      if (el && focusEl(el)) lostFocus = null;
    }
  }

  // Focuses the element whose data-focus is `key`, or else one that stands in
  // for it (data-focus-also lists the keys it stands in for: a retry's outcome
  // line takes the focus of Retry buttons that are gone or disabled). True if
  // either took the focus. When the control is there but cannot take the
  // focus (disabled), or nothing could, the key waits in lostFocus.
  function refocus(key, root = document) {
    const k = CSS.escape(key);
    const el = root.querySelector(`[data-focus="${k}"]`);
    if (el && focusEl(el)) return true;
    const standIn = root.querySelector(`[data-focus-also~="${k}"]`);
    const took = Boolean(standIn) && focusEl(standIn);
    if (el || !took) lostFocus = key;
    return took;
  }

  // A touch device (no hover, so no tooltip), or this click came from a finger.
  function touchInput(ev) {
    if (ev && ev.pointerType === 'touch') return true;
    return matchMedia('(hover: none)').matches;
  }

  // ---- Formatting -------------------------------------------------------------
  const STATUS_CLASS = {
    Succeeded: 's-ok', Failed: 's-bad', InProgress: 's-run', Stopping: 's-warn',
    Stopped: 's-warn', Abandoned: 's-off', Superseded: 's-off', Cancelled: 's-off',
  };
  const statusClass = (s) => STATUS_CLASS[s] || 's-idle';
  const statusLabel = (s) => (s === 'InProgress' ? 'In progress' : s || "Didn't run");
  const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Superseded', 'Cancelled', 'Abandoned']);

  function badge(status, label, cls) {
    return h('span', { class: `badge ${cls || statusClass(status)}` },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), label || statusLabel(status));
  }

  // What an in-progress action is really doing, in words: an approval waits
  // for a person, a job for a worker to take it. null otherwise.
  function waitingFor(le, isApproval) {
    if (!le || le.status !== 'InProgress') return null;
    if (isApproval) return 'Waiting for approval';
    if ((le.summary || '').startsWith('Waiting for a worker')) return 'Waiting for a worker';
    return null;
  }

  // Log text with its ANSI colour codes (SGR: ESC [ ... m) rendered as
  // spans; every other escape sequence is dropped. Returns DOM nodes.
  const ANSI_RE = /\x1b\[([0-9;?]*)([ -\/]*[@-~])/g;
  function ansiNodes(chunk, style) {
    // A sequence cut by the end of a chunk waits for the next one.
    let text = (style.pending || '') + chunk;
    const cut = text.match(/\x1b(?:\[[0-9;?]*[ -\/]*)?$/);
    style.pending = cut ? cut[0] : '';
    if (cut) text = text.slice(0, cut.index);
    const out = [];
    let last = 0;
    const flush = (chunk) => {
      if (!chunk) return;
      const cls = [];
      if (style.bold) cls.push('ansi-bold');
      if (style.fg !== undefined) cls.push(`ansi-fg-${style.fg}`);
      if (style.bg !== undefined) cls.push(`ansi-bg-${style.bg}`);
      out.push(cls.length ? h('span', { class: cls.join(' ') }, chunk) : document.createTextNode(chunk));
    };
    for (const m of text.matchAll(ANSI_RE)) {
      flush(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[2] !== 'm') continue;
      const codes = m[1] === '' ? [0] : m[1].split(';').map((c) => Number(c) || 0);
      for (const c of codes) {
        if (c === 0) { delete style.fg; delete style.bg; style.bold = false; }
        else if (c === 1) style.bold = true;
        else if (c === 22) style.bold = false;
        else if (c >= 30 && c <= 37) style.fg = c - 30;
        else if (c >= 90 && c <= 97) style.fg = c - 90 + 8;
        else if (c === 39) delete style.fg;
        else if (c >= 40 && c <= 47) style.bg = c - 40;
        else if (c >= 100 && c <= 107) style.bg = c - 100 + 8;
        else if (c === 49) delete style.bg;
      }
    }
    flush(text.slice(last));
    return out;
  }

  function absTime(ts) {
    return new Date(ts * 1000).toLocaleString(undefined, {
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
  }

  function relTime(ts) {
    const s = Date.now() / 1000 - ts;
    if (s < 5) return 'just now';
    if (s < 60) return `${Math.floor(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  // A <time> whose "3 min ago" text refreshTimes() keeps current in place.
  function timeEl(ts) {
    if (!ts) return h('span', { class: 'muted' }, '—');
    return h('time', { datetime: new Date(ts * 1000).toISOString(), title: absTime(ts), 'data-ts': ts },
      relTime(ts));
  }

  function refreshTimes() {
    for (const t of document.querySelectorAll('time[data-ts]')) {
      const text = relTime(Number(t.getAttribute('data-ts')));
      if (t.textContent !== text) t.textContent = text;
    }
    for (const t of document.querySelectorAll('[data-since]')) {
      const text = `running ${duration(Number(t.getAttribute('data-since')), Date.now() / 1000)}`;
      if (t.textContent !== text) t.textContent = text;
    }
  }

  // "3 s", or "running 12 s" kept current by refreshTimes().
  function runDuration(start, end, running) {
    if (running && start) return h('span', { 'data-since': start }, `running ${duration(start, Date.now() / 1000)}`);
    return duration(start, end);
  }

  function clockTime(ts) {
    return new Date(ts * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function duration(from, to) {
    if (!from || !to) return '—';
    let s = Math.max(0, Math.round(to - from));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  const shortId = (id) => (id ? id.slice(0, 8) : '');

  const routes = {
    pipelines: () => '#/',
    pipeline: (p) => `#/pipelines/${enc(p)}`,
    history: (p) => `#/pipelines/${enc(p)}/executions`,
    execution: (p, e) => `#/pipelines/${enc(p)}/executions/${enc(e)}`,
    log: (p, e, a) => `#/pipelines/${enc(p)}/executions/${enc(e)}/logs/${enc(a)}`,
  };

  // ---- API ---------------------------------------------------------------------
  class ApiError extends Error {
    constructor(code, message, httpStatus) {
      super(message);
      this.code = code;
      this.httpStatus = httpStatus;
    }
  }

  // Calls one operation; resolves to its JSON output, rejects with ApiError
  // (code = the exception name, or 'NetworkError' when the server is away).
  async function api(op, body = {}, prefix = CODEPIPELINE) {
    let res;
    const headers = { 'X-Amz-Target': prefix + op, 'Content-Type': 'application/x-amz-json-1.1' };
    if (session.csrf) headers['X-Pw-Csrf'] = session.csrf;
    try {
      res = await fetch('/', {
        method: 'POST',
        cache: 'no-store',
        credentials: 'same-origin',
        headers,
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError('NetworkError', 'Cannot reach the Pipewright server.', 0);
    }
    if (session.required && (res.status === 401 || res.status === 403)) {
      showSignIn('Your session has ended. Sign in again to continue.');
      throw new ApiError('SessionEnded', 'Your session has ended.', res.status);
    }
    const text = await res.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch (e) {
      data = { message: text };
    }
    if (!res.ok) {
      const code = String(data.__type || res.headers.get('X-Amzn-ErrorType') || `HTTP${res.status}`)
        .split('#').pop().split(':')[0];
      throw new ApiError(code, data.message || data.Message || res.statusText, res.status);
    }
    return data;
  }

  // All pages of a list operation.
  async function apiAll(op, body, listKey, prefix = CODEPIPELINE) {
    const out = [];
    let token;
    do {
      const page = await api(op, token ? { ...body, nextToken: token } : body, prefix);
      out.push(...(page[listKey] || []));
      token = page.nextToken;
    } while (token);
    return out;
  }

  // ---- Toasts, banner, live indicator -------------------------------------------
  // Shows a message (text or nodes) for a while; ms = 0 keeps it until
  // dismissed or updated. Returns the toast, for updateToast().
  function toast(message, kind = 'info', ms = kind === 'error' ? 12000 : 4000) {
    const close = h('button', { class: 'close', type: 'button', 'aria-label': 'Dismiss' }, '×');
    const el = h('div', { class: `toast ${kind}` }, h('span', { class: 'msg' }, message), close);
    close.addEventListener('click', () => el.remove());
    const box = $('#toasts');
    box.append(el);
    while (box.children.length > 3) box.firstElementChild.remove();
    if (ms) el.timer = setTimeout(() => el.remove(), ms);
    return el;
  }

  // Replaces what a toast says (a new one if it was dismissed meanwhile).
  function updateToast(el, message, kind, ms) {
    if (!el || !el.isConnected) return toast(message, kind, ms);
    clearTimeout(el.timer);
    el.className = `toast ${kind}`;
    const msg = $('.msg', el);
    msg.replaceChildren();
    append(msg, [message]);
    if (ms) el.timer = setTimeout(() => el.remove(), ms);
    return el;
  }

  function setBanner(text) {
    const b = $('#banner');
    b.hidden = !text;
    if (b.textContent !== (text || '')) b.textContent = text || '';
  }

  function setLive(kind, text) {
    const el = $('#live');
    el.className = `live ${kind}`;
    if (el.textContent !== text) el.textContent = text;
  }

  // ---- Dialogs ----------------------------------------------------------------
  // Opens the modal with `fields` and buttons; each button's `run(form)` may
  // return a promise; an error keeps the dialog open and shows its message.
  // returnFocus: the data-focus key of the control that opened it; focus
  // goes back to it (or its stand-in) when the dialog closes, however.
  function openDialog({ title, intro, fields = [], buttons, returnFocus }) {
    const dlg = $('#dialog');
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { method: 'dialog' },
      h('header', {}, h('h2', { id: 'dialog-title' }, title)),
      h('div', { class: 'body' }, intro || null, fields, error),
      h('footer', {}, buttons.map((b) => {
        const btn = h('button', { class: `btn ${b.kind || ''}`, type: b.cancel ? 'button' : 'submit', value: b.label }, b.label);
        btn.addEventListener('click', async (ev) => {
          ev.preventDefault();
          if (b.cancel) { dlg.close(); return; }
          if (!form.reportValidity()) return;
          const all = form.querySelectorAll('button');
          all.forEach((x) => { x.disabled = true; });
          error.hidden = true;
          try {
            await b.run(form);
            dlg.close();
          } catch (e) {
            error.textContent = e.message || String(e);
            error.hidden = false;
          } finally {
            all.forEach((x) => { x.disabled = false; });
          }
        });
        return btn;
      })));
    if (returnFocus) {
      const view = poller.view;
      // A close event is queued, not immediate: one still pending from an
      // earlier dialog can arrive while this one is open. Only this dialog's
      // own close counts (a `once` listener spent on a stale one left the
      // focus on the page's body).
      const onClose = () => {
        if (dlg.open) return;
        dlg.removeEventListener('close', onClose);
        if (!dlg.contains(form)) return;  // Another dialog replaced this one.
        // After the click's own re-render (the poller may rebuild the control);
        // not when the dialog closed because the page changed.
        setTimeout(() => { if (!dlg.open && poller.view === view) refocus(returnFocus); }, 0);
      };
      dlg.addEventListener('close', onClose);
    }
    dlg.replaceChildren(form);
    dlg.showModal();
    const first = form.querySelector('input[type=text], textarea, select');
    if (first) first.focus();
  }

  function textField(label, name, { value = '', max, required, pattern, hint, area } = {}) {
    const id = nextId('f');
    const input = area
      ? h('textarea', { id, name, maxlength: max, required })
      : h('input', { id, name, type: 'text', maxlength: max, required, pattern, autocomplete: 'off' });
    input.value = value;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input,
      hint ? h('span', { class: 'muted small' }, hint) : null);
  }

  // ---- Retrying a stage ------------------------------------------------------------
  // Shared by the pipeline page and the execution page. Each view feeds it a
  // snapshot of every stage on each refresh (observe), asks it for the
  // stage's footer (foot) and includes sig() in the stage's signature.
  //  * "Retry stage", and any retry on a touch device (no hover, so no
  //    tooltip), first shows the plan from GetStageRetryPlan in a
  //    confirmation: what runs again, what runs after, what is kept.
  //  * While the request is out and until the retried actions end, the
  //    buttons stay in place but aria-disabled ("Retrying…"), so focus stays
  //    on the control. When the buttons go (the stage succeeded), focus goes
  //    to the outcome line that replaces them.
  //  * The outcome is reported: the "Retrying…" toast turns into "succeeded",
  //    or "failed again" with the failing action and a link to its log.
  const RETRY_MODES = [
    ['FAILED_ACTIONS', 'Retry failed actions', 'btn primary'],
    ['ALL_ACTIONS', 'Retry stage', 'btn'],
  ];

  class Retrier {
    // onChange(): re-render the view now.
    constructor(pipelineName, onChange) {
      this.name = pipelineName;
      this.onChange = onChange;
      this.tracked = new Map(); // stage -> { execId, mode, before, pending, outcome, toast }
      this.snaps = new Map(); // stage -> the latest snapshot
    }

    // snap: { execId, status, actions: [{ name, id, status, log, error }] }
    // where log is the console route of the action's log (or null).
    observe(stage, snap) {
      this.snaps.set(stage, snap);
      const t = this.tracked.get(stage);
      if (!t) return;
      if (!snap || snap.execId !== t.execId) { this.tracked.delete(stage); return; }
      if (t.pending || t.outcome) return;
      const fresh = snap.actions.filter((a) => a.id && !t.before.has(a.id));
      if (!fresh.length || !TERMINAL.has(snap.status) || fresh.some((a) => !TERMINAL.has(a.status))) return;
      const failed = fresh.filter((a) => a.status === 'Failed');
      if (snap.status === 'Succeeded') {
        t.outcome = { kind: 'ok', text: `The retry of ${stage} succeeded.` };
        t.toast = updateToast(t.toast, t.outcome.text, 'info', 6000);
      } else if (snap.status === 'Failed' && failed.length) {
        const a = failed[0];
        const text = `The retried action${failed.length > 1 ? 's' : ''} in ${stage} failed again: ${failed.map((x) => x.name).join(', ')}.`;
        t.outcome = { kind: 'bad', text, action: a };
        const detail = () => [h('span', {}, text),
          a.error ? [' ', h('span', { class: 'why' }, `${a.error.code}: ${a.error.message}`)] : null,
          a.log ? [' ', h('a', { href: a.log }, `Log of ${a.name}`)] : null];
        t.toast = updateToast(t.toast, detail(), 'error', 20000); // the footer keeps saying it
      } else {
        t.outcome = { kind: 'warn', text: `The retry of ${stage} ended: ${statusLabel(snap.status)}.` };
        t.toast = updateToast(t.toast, t.outcome.text, 'info', 8000);
      }
      this.onChange();
    }

    sig(stage) {
      const t = this.tracked.get(stage);
      return t ? JSON.stringify([t.execId, t.mode, t.pending, t.outcome]) : '';
    }

    // The stage's footer: the Retry buttons (plan: GetStageRetryPlan's
    // output, or undefined), the reasons a retry is refused, the outcome of
    // the last retry. null when there is nothing to show.
    foot(stage, execId, plan, actionNames) {
      let t = this.tracked.get(stage);
      if (t && t.execId !== execId) t = undefined;
      const running = t && !t.outcome;
      if (!plan && !t) return null;
      const reasons = [];
      const buttons = (plan || running) ? RETRY_MODES.map(([mode, label, cls]) => {
        const p = (plan && plan.plans && plan.plans[mode]) || { retryable: false, reason: 'No plan.' };
        const tipId = nextId('tip');
        const reasonId = nextId('why');
        const usable = p.retryable && !running;
        if (!running && !p.retryable && !reasons.some((r) => r.text === p.reason)) reasons.push({ id: reasonId, text: p.reason });
        const describedBy = running ? null : p.retryable ? tipId : reasons.find((r) => r.text === p.reason).id;
        const tip = usable
          ? h('div', { class: 'tip', role: 'tooltip', id: tipId },
            h('div', { class: 'tip-title' }, mode === 'ALL_ACTIONS' ? 'Runs the whole stage again:' : 'Runs again:'),
            h('ul', {}, (p.actionsToRerun || []).map((n) => h('li', {}, n))),
            (p.actionsToRunAfter || []).length
              ? h('div', { class: 'tip-sub' }, `Then, as the stage continues: ${p.actionsToRunAfter.join(', ')}`) : null)
          : null;
        // Unusable while a retry runs: aria-disabled, not disabled, so the
        // button keeps the keyboard focus.
        return h('div', { class: 'retry', 'data-mode': mode },
          h('button', {
            class: cls, type: 'button', 'data-focus': `retry|${stage}|${mode}`,
            disabled: !running && !p.retryable, 'aria-disabled': running ? 'true' : null, 'aria-describedby': describedBy,
            onclick: (ev) => { if (usable) this.click(ev, stage, execId, mode, p, actionNames); },
          }, running && t.mode === mode ? 'Retrying…' : label),
          tip);
      }) : [];
      const outcome = t && t.outcome
        ? h('p', {
          class: `retry-outcome ${t.outcome.kind}`, tabindex: '-1', 'data-focus': `outcome|${stage}`,
          'data-focus-also': RETRY_MODES.map(([m]) => `retry|${stage}|${m}`).join(' '),
        }, t.outcome.text,
        t.outcome.action && t.outcome.action.log ? [' ', h('a', { href: t.outcome.action.log }, `Log of ${t.outcome.action.name}`)] : null)
        : null;
      if (!buttons.length && !outcome) return null;
      return h('footer', { class: 'stage-foot' },
        buttons.length ? h('div', { class: 'retry-row' }, buttons) : null,
        reasons.map((r) => h('p', { class: 'retry-reason', id: r.id }, h('b', {}, 'Cannot retry: '), r.text)),
        outcome);
    }

    click(ev, stage, execId, mode, p, actionNames) {
      if (mode === 'FAILED_ACTIONS' && !touchInput(ev)) { this.run(stage, execId, mode); return; }
      const rerun = p.actionsToRerun || [];
      const after = p.actionsToRunAfter || [];
      const kept = actionNames.filter((n) => !rerun.includes(n) && !after.includes(n));
      const list = (title, names, none) => h('section', { class: 'plan-part', 'aria-label': title },
        h('h3', {}, title),
        names.length ? h('ul', {}, names.map((n) => h('li', {}, n))) : h('p', { class: 'muted small' }, none));
      openDialog({
        title: mode === 'ALL_ACTIONS' ? `Retry stage ${stage}?` : `Retry failed actions in ${stage}?`,
        intro: h('div', { class: 'plan' },
          h('p', {}, 'Execution ', h('code', {}, execId), mode === 'ALL_ACTIONS'
            ? ': every action of the stage runs again.' : ': only what failed runs again.'),
          list('Runs again', rerun, 'Nothing.'),
          after.length ? list('Then runs, as the stage continues', after, '') : null,
          list('Kept (not run again)', kept, 'Nothing: every action runs again.')),
        returnFocus: `retry|${stage}|${mode}`,
        buttons: [
          { label: 'Cancel', cancel: true },
          { label: 'Confirm', kind: 'primary', run: () => this.run(stage, execId, mode) }],
      });
    }

    async run(stage, execId, mode) {
      const snap = this.snaps.get(stage);
      const t = {
        execId, mode, pending: true, outcome: null,
        before: new Set(snap && snap.execId === execId ? snap.actions.map((a) => a.id).filter(Boolean) : []),
      };
      const prev = this.tracked.get(stage);
      if (prev && prev.toast) prev.toast.remove();
      this.tracked.set(stage, t);
      this.onChange();
      try {
        await api('RetryStageExecution', { pipelineName: this.name, stageName: stage, pipelineExecutionId: execId, retryMode: mode });
        t.toast = toast(`Retrying ${mode === 'ALL_ACTIONS' ? 'stage' : 'failed actions in'} ${stage}…`, 'info', 0);
        t.pending = false;
      } catch (e) {
        this.tracked.delete(stage);
        toast(`Retry of ${stage} refused: ${e.message}`, 'error');
      }
      this.onChange();
      poller.kick();
    }
  }

  // ---- Poller -------------------------------------------------------------------
  const poller = {
    view: null,
    timer: 0,
    failures: 0,
    running: false,

    start(view) {
      this.view = view;
      this.failures = 0;
      this.kick();
    },

    // Refresh now (after a click, or when the tab is shown again).
    kick() {
      clearTimeout(this.timer);
      if (this.running) { this.again = true; return; }
      this.tick();
    },

    async tick() {
      const view = this.view;
      if (!view) return;
      this.running = true;
      this.again = false;
      try {
        await view.refresh();
        this.failures = 0;
        setBanner('');
      } catch (e) {
        this.failures += 1;
        this.report(view, e);
      } finally {
        this.running = false;
      }
      // Navigated meanwhile: start() left the new view to this tick to start.
      if (view !== this.view) { if (this.again && this.view) this.tick(); return; }
      if (view.focusHeading) {
        // After a navigation, move focus to the new page's heading (screen readers).
        view.focusHeading = false;
        const h1 = $('#main h1');
        if (h1) h1.focus({ preventScroll: true });
      }
      if (view.done) return;
      refreshTimes();
      const hidden = document.visibilityState !== 'visible';
      setLive(this.failures ? 'off' : hidden ? 'paused' : 'on',
        this.failures ? 'Offline' : hidden ? 'Paused' : 'Live');
      if (this.again) { this.tick(); return; }
      let wait = hidden ? HIDDEN_MS : view.interval;
      if (this.failures) wait = Math.min(HIDDEN_MS, Math.max(wait, 1000 * 2 ** this.failures));
      this.timer = setTimeout(() => this.tick(), wait);
    },

    report(view, e) {
      if (e instanceof ApiError && e.code === 'SessionEnded') {
        view.done = true; // the sign-in form has replaced the page
      } else if (e instanceof ApiError && e.code === 'NetworkError') {
        setBanner(`Cannot reach the Pipewright server at ${location.host}; retrying…`);
      } else if (e instanceof ApiError && (e.httpStatus === 403 || e.code === 'MissingAuthenticationToken')) {
        setBanner('This server only accepts signed requests (--auth-keys-file); the console cannot sign them.');
        view.done = true;
      } else if (e instanceof ApiError && /NotFound/.test(e.code)) {
        view.notFound(e);
        view.done = true;
      } else {
        setBanner(`The server answered with an error: ${e.message}`);
      }
    },
  };

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') poller.kick();
    else setLive('paused', 'Paused');
  });

  // ---- Views ----------------------------------------------------------------------
  // A view owns a root element; the poller calls refresh() every `interval` ms.
  class View {
    constructor() {
      this.root = h('div', {});
      this.interval = 1000;
      this.done = false;
    }

    notFound(e) {
      this.root.replaceChildren(
        h('div', { class: 'crumbs' }, h('a', { href: routes.pipelines() }, 'Pipelines')),
        h('h1', { tabindex: '-1' }, 'Not found'),
        h('p', { class: 'muted' }, e.message),
        h('p', {}, h('a', { href: routes.pipelines() }, 'Back to all pipelines')));
    }

    head(crumbs, title, meta, tools) {
      return h('div', { class: 'page-head' },
        h('div', {},
          crumbs.length ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
            crumbs.map(([label, href], i) => [i ? ' / ' : '', h('a', { href }, label)])) : null,
          h('h1', { tabindex: '-1' }, title),
          meta ? h('div', { class: 'meta' }, meta) : null),
        tools ? h('div', { class: 'toolbar' }, tools) : null);
    }
  }

  // -- #/ ------------------------------------------------------------------------------
  class PipelinesView extends View {
    constructor() {
      super();
      // One request per refresh (Pipewright_20261125.ListPipelineSummaries:
      // every pipeline with its latest execution); a key whose policy does
      // not allow it falls back to ListPipelines + one ListPipelineExecutions
      // per pipeline.
      this.interval = 5000;
      this.rows = [];
      this.batched = true;
      this.filter = { q: '', status: 'all', sort: 'name', page: 0 };
      this.pageSize = 25;
      this.search = h('input', { type: 'search', class: 'search', placeholder: 'Search pipelines', 'aria-label': 'Search pipelines by name' });
      this.search.addEventListener('input', () => { this.filter.q = this.search.value; this.filter.page = 0; this.render(); });
      this.statusSel = this.select('Status', [['all', 'All statuses'], ['Failed', 'Failed'], ['InProgress', 'In progress'],
        ['Succeeded', 'Succeeded'], ['Stopped', 'Stopped or stopping'], ['none', 'Never ran']], 'status');
      this.sortSel = this.select('Sort by', [['name', 'Name'], ['recent', 'Latest activity'], ['status', 'Status']], 'sort');
      this.controls = h('div', { class: 'list-controls' }, this.search, this.statusSel, this.sortSel);
      this.body = h('div', { class: 'panel' }, h('p', { class: 'empty' }, 'Loading pipelines…'));
      this.pager = h('nav', { class: 'pager', 'aria-label': 'Pages of pipelines' });
      this.root.append(this.head([], 'Pipelines', [h('span', {}, 'Every pipeline on this server and its latest execution.')]),
        this.controls, this.body, this.pager);
      document.title = 'Pipelines · Pipewright';
    }

    select(label, options, key) {
      const sel = h('select', { 'aria-label': label }, options.map(([v, t]) => h('option', { value: v }, t)));
      sel.addEventListener('change', () => { this.filter[key] = sel.value; this.filter.page = 0; this.render(); });
      return h('label', { class: 'control' }, h('span', { class: 'muted small' }, label), sel);
    }

    async refresh() {
      if (this.batched) {
        try {
          const list = await apiAll('ListPipelineSummaries', {}, 'pipelineSummaries', PIPEWRIGHT);
          this.rows = list.map((p) => ({ p, e: p.latestExecution }));
        } catch (e) {
          if (e.code === 'NetworkError' || e.code === 'SessionEnded') throw e;
          this.batched = false; // e.g. AccessDenied for the extension: ask the model's way
        }
      }
      if (!this.batched) {
        const pipelines = await apiAll('ListPipelines', {}, 'pipelines');
        const latest = await Promise.all(pipelines.map((p) =>
          api('ListPipelineExecutions', { pipelineName: p.name, maxResults: 1 })
            .then((r) => (r.pipelineExecutionSummaries || [])[0])
            .catch(() => undefined)));
        this.rows = pipelines.map((p, i) => ({ p, e: latest[i] }));
      }
      this.render();
    }

    visibleRows() {
      const { q, status, sort } = this.filter;
      const needle = q.trim().toLowerCase();
      const STOPPED = new Set(['Stopped', 'Stopping']);
      let rows = this.rows.filter(({ p, e }) => {
        if (needle && !p.name.toLowerCase().includes(needle)) return false;
        if (status === 'all') return true;
        if (status === 'none') return !e;
        if (status === 'Stopped') return e && STOPPED.has(e.status);
        return e && e.status === status;
      });
      const activity = ({ p, e }) => Math.max(p.updated || 0, e ? e.lastUpdateTime || e.startTime || 0 : 0);
      const ORDER = { Failed: 0, Stopped: 1, Stopping: 1, InProgress: 2, Succeeded: 3 };
      const rank = ({ e }) => (e ? (ORDER[e.status] ?? 4) : 5);
      rows = [...rows].sort((a, b) => {
        if (sort === 'recent') return activity(b) - activity(a) || a.p.name.localeCompare(b.p.name);
        if (sort === 'status') return rank(a) - rank(b) || a.p.name.localeCompare(b.p.name);
        return a.p.name.localeCompare(b.p.name);
      });
      return rows;
    }

    render() {
      if (!this.rows.length) {
        this.controls.hidden = true;
        this.pager.replaceChildren();
        reconcile(this.body, [{ key: 'empty', sig: 'empty', render: () => h('div', { class: 'empty' },
          h('p', {}, 'No pipelines yet.'),
          h('p', { class: 'small' }, 'Create one with ',
            h('code', {}, 'pipewright create-pipeline --pipeline file://pipeline.json'),
            ' (a complete one to copy: ', h('code', {}, 'examples/pipeline.json'), ', walked through in the README).')) }]);
        return;
      }
      this.controls.hidden = false;
      const rows = this.visibleRows();
      const pages = Math.max(1, Math.ceil(rows.length / this.pageSize));
      if (this.filter.page >= pages) this.filter.page = pages - 1;
      const first = this.filter.page * this.pageSize;
      const shown = rows.slice(first, first + this.pageSize);
      const sig = JSON.stringify([shown, rows.length]);
      reconcile(this.body, [{ key: 'table', sig, render: () => (shown.length ? this.table(shown)
        : h('p', { class: 'empty' }, 'No pipeline matches.')) }]);
      const pageSig = `${this.filter.page}/${pages}/${rows.length}`;
      if (this.pager.dataset.sig !== pageSig) {
        this.pager.dataset.sig = pageSig;
        const go = (n) => { this.filter.page = n; this.render(); };
        this.pager.replaceChildren(
          h('button', { class: 'btn small', type: 'button', disabled: this.filter.page === 0, onclick: () => go(this.filter.page - 1) }, 'Previous'),
          h('span', { class: 'muted small', 'aria-live': 'polite' },
            rows.length ? `${first + 1}–${Math.min(first + this.pageSize, rows.length)} of ${rows.length}` : '0 of 0'),
          h('button', { class: 'btn small', type: 'button', disabled: this.filter.page >= pages - 1, onclick: () => go(this.filter.page + 1) }, 'Next'));
      }
    }

    table(rows) {
      return h('table', { class: 'grid stack' },
        h('caption', { class: 'sr-only' }, 'Pipelines and their latest execution'),
        h('thead', {}, h('tr', {}, ['Name', 'Latest execution', 'Started', 'Last change', 'Mode']
          .map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map(({ p, e }) => h('tr', {},
          h('td', { class: 'name', 'data-label': 'Name' }, h('a', { href: routes.pipeline(p.name) }, p.name)),
          h('td', { 'data-label': 'Latest' }, e ? [badge(e.status), ' ',
            h('a', { class: 'mono small', href: routes.execution(p.name, e.pipelineExecutionId), title: e.pipelineExecutionId },
              shortId(e.pipelineExecutionId))] : h('span', { class: 'muted' }, 'No executions yet')),
          h('td', { 'data-label': 'Started' }, e ? timeEl(e.startTime) : '—'),
          h('td', { 'data-label': 'Last change' }, timeEl(Math.max(p.updated || 0, e ? e.lastUpdateTime || 0 : 0))),
          h('td', { 'data-label': 'Mode' }, h('span', { class: 'muted' }, `${p.executionMode || 'SUPERSEDED'} · v${p.version}`))))));
    }
  }

  // -- #/pipelines/<name> ------------------------------------------------------------
  const ACTIVE = new Set(['InProgress', 'Stopping']);

  class PipelineView extends View {
    constructor(name) {
      super();
      this.name = name;
      this.decl = null;
      this.stateSig = '';
      this.executions = [];
      this.plans = new Map(); // plan key -> GetStageRetryPlan output
      this.runs = new Map(); // actionExecutionId -> ListActionExecutions detail (start and end times)
      this.retrier = new Retrier(name, () => { if (this.state) this.render(); });
      this.headBox = h('div', {});
      this.callouts = h('div', {});
      this.summary = h('div', {});
      this.stages = h('div', { class: 'stages' });
      this.root.append(this.headBox, this.callouts, this.summary, this.stages);
      document.title = `${name} · Pipewright`;
    }

    async refresh() {
      const state = await api('GetPipelineState', { name: this.name });
      if (!this.decl || this.decl.version !== state.pipelineVersion) {
        this.decl = (await api('GetPipeline', { name: this.name })).pipeline;
      }
      const sig = JSON.stringify(state.stageStates) + state.pipelineVersion;
      if (sig !== this.stateSig) {
        // Something moved: fetch what depends on it (not every second).
        const [list] = await Promise.all([
          api('ListPipelineExecutions', { pipelineName: this.name, maxResults: 5 }),
          this.loadPlans(state),
          this.loadRuns(state),
        ]);
        this.executions = list.pipelineExecutionSummaries || [];
        this.stateSig = sig;
      }
      this.state = state;
      for (const s of state.stageStates) this.retrier.observe(s.stageName, this.snapshot(s));
      this.render();
    }

    // The stage as the Retrier sees it.
    snapshot(s) {
      const le = s.latestExecution;
      if (!le) return null;
      return {
        execId: le.pipelineExecutionId,
        status: le.status,
        actions: (s.actionStates || []).map((a) => {
          const x = a.latestExecution || {};
          return {
            name: a.actionName, id: x.actionExecutionId, status: x.status, error: x.errorDetails,
            log: x.externalExecutionUrl && x.actionExecutionId ? routes.log(this.name, le.pipelineExecutionId, x.actionExecutionId) : null,
          };
        }),
      };
    }

    // Start and end of each action's latest run (for durations): one
    // ListActionExecutions per execution shown, at most three, on change only.
    async loadRuns(state) {
      const ids = [...new Set(state.stageStates.filter((s) => s.latestExecution)
        .map((s) => s.latestExecution.pipelineExecutionId))].slice(0, 3);
      const lists = await Promise.all(ids.map((id) =>
        apiAll('ListActionExecutions', { pipelineName: this.name, filter: { pipelineExecutionId: id } }, 'actionExecutionDetails')
          .catch((e) => { if (e.code === 'NetworkError') throw e; return []; })));
      this.runs = new Map(lists.flat().map((r) => [r.actionExecutionId, r]));
    }

    declStage(name) {
      return (this.decl.stages || []).find((s) => s.name === name) || { name, actions: [] };
    }

    // A stage gets Retry buttons when its latest run failed or stopped, or
    // one of its actions failed (the plan then tells whether it may run again).
    retryCandidate(stage) {
      const le = stage.latestExecution;
      if (!le) return false;
      if (le.status === 'Failed' || le.status === 'Stopped') return true;
      return (stage.actionStates || []).some((a) => a.latestExecution && a.latestExecution.status === 'Failed');
    }

    planKey(stage, state) {
      return JSON.stringify([stage.stageName, stage.latestExecution, state.pipelineVersion,
        (stage.actionStates || []).map((a) => a.latestExecution && [a.latestExecution.actionExecutionId, a.latestExecution.status])]);
    }

    async loadPlans(state) {
      const next = new Map();
      await Promise.all(state.stageStates.filter((s) => this.retryCandidate(s)).map(async (s) => {
        const key = this.planKey(s, state);
        let plan = this.plans.get(key);
        if (!plan || plan.fallback) {
          try {
            plan = await api('GetStageRetryPlan', {
              pipelineName: this.name, stageName: s.stageName,
              pipelineExecutionId: s.latestExecution.pipelineExecutionId,
            }, PIPEWRIGHT);
          } catch (e) {
            if (e.code === 'NetworkError') throw e;
            // Shown, and asked again on the next change.
            const no = { retryable: false, reason: `The retry plan is unavailable: ${e.message}` };
            plan = { fallback: true, plans: { FAILED_ACTIONS: no, ALL_ACTIONS: no } };
          }
        }
        next.set(key, plan);
      }));
      this.plans = next;
    }

    render() {
      const state = this.state;
      const active = this.executions.filter((e) => ACTIVE.has(e.status));
      const latest = this.executions[0];
      document.title = `${this.name}${latest ? ` · ${statusLabel(latest.status)}` : ''} · Pipewright`;

      reconcile(this.headBox, [{
        key: 'head', sig: JSON.stringify([this.decl.version, this.decl.executionMode, active.map((e) => e.pipelineExecutionId)]),
        render: () => this.head([['Pipelines', routes.pipelines()], [this.name, routes.pipeline(this.name)]], this.name,
          [h('span', {}, `Version ${this.decl.version}`), h('span', {}, `${this.decl.executionMode || 'SUPERSEDED'} mode`),
            h('span', {}, `${(this.decl.stages || []).length} stages`)],
          [h('button', { class: 'btn primary', type: 'button', 'data-focus': 'release', onclick: () => this.release() }, 'Release change'),
            h('button', {
              class: 'btn danger', type: 'button', 'data-focus': 'stop', disabled: !active.length,
              title: active.length ? null : 'No execution is in progress', onclick: () => openStopDialog(this.name, active),
            }, 'Stop execution'),
            h('a', { class: 'btn', href: routes.history(this.name) }, 'Execution history')]),
      }]);

      const approvals = [];
      for (const s of state.stageStates) {
        for (const a of s.actionStates || []) {
          const le = a.latestExecution;
          if (le && le.status === 'InProgress' && le.token) approvals.push({ s, a });
        }
      }
      reconcile(this.callouts, approvals.map(({ s, a }) => ({
        key: `approval|${a.latestExecution.token}`, sig: 'x',
        render: () => h('div', { class: 'callout', role: 'note' },
          h('strong', {}, 'Approval needed'),
          h('span', {}, `${s.stageName} / ${a.actionName} is waiting for a review.`),
          h('button', { class: 'btn small', type: 'button', 'data-focus': `review-top|${s.stageName}|${a.actionName}`, onclick: () => this.approvalDialog(s, a) }, 'Review')),
      })));

      reconcile(this.summary, latest ? [{
        key: 'summary', sig: JSON.stringify(latest),
        render: () => h('section', { class: 'panel summary', 'aria-label': 'Latest execution' },
          h('span', { class: 'label' }, 'Latest execution'), badge(latest.status),
          h('a', { class: 'mono', href: routes.execution(this.name, latest.pipelineExecutionId) }, latest.pipelineExecutionId),
          h('span', { class: 'muted small' }, 'started ', timeEl(latest.startTime), ' · ', triggerText(latest.trigger)),
          latest.statusSummary ? h('span', { class: 'text' }, latest.statusSummary) : null),
      }] : []);

      const items = [];
      const parallel = this.decl.executionMode === 'PARALLEL';
      state.stageStates.forEach((s, i) => {
        if (i > 0) {
          items.push({ key: `t|${s.stageName}`, sig: JSON.stringify([s.inboundTransitionState, s.inboundExecution]), render: () => this.transition(s) });
        }
        const plan = this.plans.get(this.planKey(s, state));
        const runs = (s.actionStates || []).map((a) => a.latestExecution && this.runs.get(a.latestExecution.actionExecutionId))
          .map((r) => r && [r.startTime, r.lastUpdateTime]);
        items.push({
          key: `s|${s.stageName}`, sig: JSON.stringify([s, plan, this.retrier.sig(s.stageName), runs, parallel, this.decl.version]),
          render: () => this.stage(s, plan, parallel),
        });
      });
      reconcile(this.stages, items);
    }

    transition(s) {
      const t = s.inboundTransitionState || { enabled: true };
      const by = t.lastChangedBy ? [' by ', t.lastChangedBy] : [];
      return h('div', { class: `transition ${t.enabled ? '' : 'disabled'}` },
        h('span', { class: 'arrow', 'aria-hidden': 'true' }, '↓'),
        h('span', { class: 'state' }, t.enabled ? 'Transition enabled' : 'Transition disabled'),
        t.enabled
          ? h('button', { class: 'btn small', type: 'button', 'data-focus': `t|${s.stageName}`, onclick: () => this.disableDialog(s) },
            'Disable transition', h('span', { class: 'sr-only' }, ` into ${s.stageName}`))
          : h('button', { class: 'btn small', type: 'button', 'data-focus': `t|${s.stageName}`, onclick: () => this.enable(s) },
            'Enable transition', h('span', { class: 'sr-only' }, ` into ${s.stageName}`)),
        !t.enabled ? h('span', { class: 'why' }, `Reason: ${t.disabledReason || '(none given)'}`, ...by,
          t.lastChangedAt ? [', ', timeEl(t.lastChangedAt)] : []) : null,
        s.inboundExecution ? h('span', { class: 'why' }, 'Waiting to enter: ',
          h('a', { class: 'mono', href: routes.execution(this.name, s.inboundExecution.pipelineExecutionId) },
            shortId(s.inboundExecution.pipelineExecutionId))) : null);
    }

    stage(s, plan, parallel) {
      const le = s.latestExecution;
      const titleId = nextId('stage');
      const decl = this.declStage(s.stageName);
      const declActions = new Map((decl.actions || []).map((a) => [a.name, a]));
      const orders = new Set((decl.actions || []).map((a) => a.runOrder || 1));
      const actions = [...(s.actionStates || [])].sort((a, b) =>
        ((declActions.get(a.actionName) || {}).runOrder || 1) - ((declActions.get(b.actionName) || {}).runOrder || 1));
      const retry = s.retryStageMetadata;
      return h('section', { class: `stage ${le ? statusClass(le.status) : ''}`, 'aria-labelledby': titleId },
        h('header', { class: 'stage-head' },
          h('h2', { id: titleId }, s.stageName),
          this.stageBadge(s, declActions, parallel),
          retry ? h('span', { class: 'chip', title: `Latest retry: ${retry.latestRetryTrigger || 'unknown'}` }, retryText(retry)) : null,
          le ? h('span', { class: 'exec' }, 'Execution ',
            h('a', { class: 'mono', href: routes.execution(this.name, le.pipelineExecutionId), title: le.pipelineExecutionId },
              shortId(le.pipelineExecutionId))) : null),
        parallel ? h('p', { class: 'stage-note' }, 'PARALLEL mode runs executions side by side; see each one in the execution history.') : null,
        this.steps(s, actions, declActions, orders),
        le ? this.retrier.foot(s.stageName, le.pipelineExecutionId, plan, (decl.actions || []).map((a) => a.name)) : null);
    }

    // Actions by runOrder: one step after another; the actions of one step
    // run in parallel, side by side on a wide screen.
    steps(s, actions, declActions, orders) {
      const groups = new Map();
      for (const a of actions) {
        const order = (declActions.get(a.actionName) || {}).runOrder || 1;
        if (!groups.has(order)) groups.set(order, []);
        groups.get(order).push(a);
      }
      const numbered = orders.size > 1;
      return h('ol', { class: 'steps' }, [...groups.entries()].map(([order, list], i) => {
        const together = list.length > 1;
        const label = [numbered ? `Step ${i + 1}` : null, together ? `${list.length} actions in parallel` : null].filter(Boolean).join(' · ');
        return h('li', { class: `step${together ? ' parallel' : ''}`, 'data-run-order': order },
          label ? h('div', { class: 'step-label' }, label) : null,
          h('ul', { class: 'actions', 'aria-label': label || null }, list.map((a) => this.action(s, a, declActions.get(a.actionName)))));
      }));
    }

    // The stage's status, or what holds it: an execution waiting at a
    // disabled transition, an approval, a worker.
    stageBadge(s, declActions, parallel) {
      const le = s.latestExecution;
      const t = s.inboundTransitionState || { enabled: true };
      if (!t.enabled && s.inboundExecution) return badge('Stopped', 'Blocked at transition', 's-warn');
      if (!le) return h('span', { class: 'badge s-idle' }, parallel ? 'See executions' : "Didn't run");
      if (le.status === 'InProgress') {
        const waits = (s.actionStates || []).map((a) => {
          const d = declActions.get(a.actionName);
          return waitingFor(a.latestExecution, d && d.actionTypeId && d.actionTypeId.category === 'Approval');
        });
        if (waits.some((w) => w === 'Waiting for approval')) return badge(le.status, 'Waiting for approval', 's-warn');
        if (waits.some((w) => w === 'Waiting for a worker')) return badge(le.status, 'Waiting for a worker', 's-warn');
      }
      return badge(le.status);
    }

    action(s, a, decl) {
      const le = a.latestExecution;
      const run = le && this.runs.get(le.actionExecutionId);
      const type = decl && decl.actionTypeId;
      const isApproval = type && type.category === 'Approval';
      const waiting = waitingFor(le, isApproval);
      return h('li', { class: `action ${waiting ? 's-warn' : le ? statusClass(le.status) : 's-none'}` },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('div', {},
          h('div', { class: 'action-name' }, h('span', {}, a.actionName),
            type ? h('span', { class: 'chip' }, type.provider) : null),
          h('div', { class: 'action-status' },
            h('span', { class: 'st' }, waiting || (le ? statusLabel(le.status) : "Didn't run")),
            le && le.lastStatusChange ? [' · ', timeEl(le.lastStatusChange)] : null,
            run && run.startTime ? [' · ', h('span', { class: 'duration', title: 'Duration' },
              TERMINAL.has(run.status) ? `took ${duration(run.startTime, run.lastUpdateTime)}` : runDuration(run.startTime, null, true))] : null,
            le && le.percentComplete !== undefined && le.status === 'InProgress' ? ` · ${le.percentComplete}%` : null),
          le && le.summary ? h('p', { class: 'summary-text' }, le.summary.trim()) : null,
          le && le.errorDetails ? h('p', { class: 'error-text' }, h('b', {}, `${le.errorDetails.code}: `), le.errorDetails.message) : null),
        h('div', { class: 'action-links' },
          isApproval && le && le.status === 'InProgress' && le.token
            ? h('button', { class: 'btn small primary', type: 'button', 'data-focus': `review|${s.stageName}|${a.actionName}`, onclick: () => this.approvalDialog(s, a) },
              'Review', h('span', { class: 'sr-only' }, ` ${a.actionName}`))
            : null,
          le && le.externalExecutionUrl && s.latestExecution
            ? h('a', { class: 'btn small', href: routes.log(this.name, s.latestExecution.pipelineExecutionId, le.actionExecutionId) },
              'Log', h('span', { class: 'sr-only' }, ` of ${a.actionName}`))
            : null));
    }

    async release() {
      try {
        const r = await api('StartPipelineExecution', { name: this.name });
        toast(`Started execution ${shortId(r.pipelineExecutionId)}.`);
      } catch (e) {
        toast(`Could not start: ${e.message}`, 'error');
      }
      this.stateSig = '';
      poller.kick();
    }

    disableDialog(s) {
      openDialog({
        title: `Disable transition into ${s.stageName}`,
        intro: h('p', { class: 'muted' }, 'Executions will wait before this stage until the transition is enabled again.'),
        fields: [textField('Reason', 'reason', {
          value: 'Paused from the console', max: 300, required: true, pattern: '[a-zA-Z0-9!@ \\(\\)\\.\\*\\?\\-]+',
          hint: 'Letters, digits, spaces and ! @ ( ) . * ? - only.',
        })],
        buttons: [
          { label: 'Cancel', cancel: true },
          {
            label: 'Disable', kind: 'danger solid',
            run: async (form) => {
              await api('DisableStageTransition', {
                pipelineName: this.name, stageName: s.stageName, transitionType: 'Inbound', reason: form.elements.reason.value,
              });
              toast(`Transition into ${s.stageName} disabled.`);
              poller.kick();
            },
          }],
      });
    }

    async enable(s) {
      try {
        await api('EnableStageTransition', { pipelineName: this.name, stageName: s.stageName, transitionType: 'Inbound' });
        toast(`Transition into ${s.stageName} enabled.`);
      } catch (e) {
        toast(`Could not enable the transition: ${e.message}`, 'error');
      }
      poller.kick();
    }

    approvalDialog(s, a) {
      const decl = (this.declStage(s.stageName).actions || []).find((x) => x.name === a.actionName) || {};
      const cfg = decl.configuration || {};
      const token = a.latestExecution.token;
      const send = (status) => async (form) => {
        await api('PutApprovalResult', {
          pipelineName: this.name, stageName: s.stageName, actionName: a.actionName,
          result: { status, summary: form.elements.comment.value }, token,
        });
        toast(`${s.stageName} / ${a.actionName}: ${status.toLowerCase()}.`);
        poller.kick();
      };
      openDialog({
        title: `Review: ${s.stageName} / ${a.actionName}`,
        intro: h('div', {},
          h('p', {}, 'Execution ', h('code', {}, s.latestExecution.pipelineExecutionId), ' is waiting for this approval.'),
          cfg.CustomData ? h('p', { class: 'summary-text' }, cfg.CustomData) : null,
          cfg.ExternalEntityLink ? h('p', {}, 'Review: ', h('a', { href: cfg.ExternalEntityLink, rel: 'noopener noreferrer', target: '_blank' }, cfg.ExternalEntityLink)) : null),
        fields: [textField('Comment', 'comment', { area: true, max: 512, hint: 'Recorded as the action\'s summary.' })],
        buttons: [
          { label: 'Cancel', cancel: true },
          { label: 'Reject', kind: 'danger', run: send('Rejected') },
          { label: 'Approve', kind: 'primary', run: send('Approved') }],
      });
    }
  }

  function openStopDialog(pipelineName, active) {
    if (!active.length) return;
    const modeName = nextId('mode');
    const select = active.length > 1
      ? h('div', { class: 'field' }, h('label', { for: 'stop-exec' }, 'Execution'),
        h('select', { id: 'stop-exec', name: 'execution' }, active.map((e) =>
          h('option', { value: e.pipelineExecutionId }, `${shortId(e.pipelineExecutionId)} — ${statusLabel(e.status)}`))))
      : h('p', {}, 'Execution ', h('code', {}, active[0].pipelineExecutionId), ' is ', statusLabel(active[0].status).toLowerCase(), '.');
    openDialog({
      title: 'Stop execution',
      fields: [select,
        h('fieldset', { class: 'field' }, h('legend', { class: 'legend' }, 'How to stop'),
          h('label', { class: 'choice' }, h('input', { type: 'radio', name: modeName, value: 'wait', checked: true }),
            h('span', {}, h('b', {}, 'Stop and wait'), ' — running actions finish, nothing new starts.')),
          h('label', { class: 'choice' }, h('input', { type: 'radio', name: modeName, value: 'abandon' }),
            h('span', {}, h('b', {}, 'Stop and abandon'), ' — running actions are abandoned now.'))),
        textField('Reason (optional)', 'reason', { max: 200 })],
      buttons: [
        { label: 'Cancel', cancel: true },
        {
          label: 'Stop', kind: 'danger solid',
          run: async (form) => {
            const id = active.length > 1 ? form.elements.execution.value : active[0].pipelineExecutionId;
            const abandon = form.elements[modeName].value === 'abandon';
            const body = { pipelineName: pipelineName, pipelineExecutionId: id, abandon };
            if (form.elements.reason.value.trim()) body.reason = form.elements.reason.value.trim();
            await api('StopPipelineExecution', body);
            toast(`${abandon ? 'Stopping and abandoning' : 'Stopping'} execution ${shortId(id)}.`);
            if (poller.view) poller.view.stateSig = '';
            poller.kick();
          },
        }],
    });
  }

  function retryText(m) {
    const parts = [];
    const n = m.manualStageRetryAttempt || 0;
    const auto = m.autoStageRetryAttempt || 0;
    if (n) parts.push(`${n} manual retr${n === 1 ? 'y' : 'ies'}`);
    if (auto) parts.push(`${auto} automatic retr${auto === 1 ? 'y' : 'ies'}`);
    return parts.join(', ');
  }

  function triggerText(t) {
    if (!t) return '';
    return t.triggerDetail ? `${t.triggerType} by ${t.triggerDetail}` : t.triggerType;
  }

  // -- #/pipelines/<name>/executions ---------------------------------------------
  class HistoryView extends View {
    constructor(name) {
      super();
      this.name = name;
      this.interval = 2000;
      this.body = h('div', { class: 'panel' }, h('p', { class: 'empty' }, 'Loading executions…'));
      this.root.append(this.head([['Pipelines', routes.pipelines()], [name, routes.pipeline(name)], ['Executions', routes.history(name)]],
        'Execution history', [h('span', {}, name)], [h('a', { class: 'btn', href: routes.pipeline(name) }, 'Back to pipeline')]), this.body);
      document.title = `History · ${name} · Pipewright`;
    }

    async refresh() {
      // The newest 50, live; older pages on request ("Show older executions"), kept.
      const r = await api('ListPipelineExecutions', { pipelineName: this.name, maxResults: 50 });
      this.newest = r.pipelineExecutionSummaries || [];
      if (!this.older) { this.older = []; this.nextToken = r.nextToken; }
      this.render();
    }

    async showOlder() {
      if (!this.nextToken) return;
      const r = await api('ListPipelineExecutions', { pipelineName: this.name, maxResults: 50, nextToken: this.nextToken });
      this.older.push(...(r.pipelineExecutionSummaries || []));
      this.nextToken = r.nextToken;
      this.render();
    }

    render() {
      const seen = new Set(this.newest.map((e) => e.pipelineExecutionId));
      const list = [...this.newest, ...this.older.filter((e) => !seen.has(e.pipelineExecutionId))];
      const more = Boolean(this.nextToken);
      reconcile(this.body, [
        { key: 'table', sig: JSON.stringify(list), render: () => this.table(list) },
        { key: 'more', sig: `${more}/${list.length}`, render: () => h('div', { class: 'pager' },
          h('span', { class: 'muted small' }, `${list.length} execution${list.length === 1 ? '' : 's'} shown`),
          more ? h('button', { class: 'btn small', type: 'button', 'data-focus': 'older', onclick: () => this.showOlder().catch((e) => toast(e.message, 'error')) },
            'Show older executions') : null) },
      ]);
    }

    table(list) {
      if (!list.length) return h('p', { class: 'empty' }, 'No executions yet.');
      return h('table', { class: 'grid stack' },
        h('caption', { class: 'sr-only' }, `Executions of ${this.name}, newest first`),
        h('thead', {}, h('tr', {}, ['Execution', 'Status', 'Source', 'Trigger', 'Started', 'Duration', 'Summary']
          .map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, list.map((e) => h('tr', {},
          h('td', { 'data-label': 'Execution' }, h('a', { class: 'mono', href: routes.execution(this.name, e.pipelineExecutionId), title: e.pipelineExecutionId }, shortId(e.pipelineExecutionId))),
          h('td', { 'data-label': 'Status' }, badge(e.status)),
          h('td', { 'data-label': 'Source', class: 'clip small' }, (e.sourceRevisions || []).map((r) => r.revisionSummary || shortId(r.revisionId)).join(', ') || '—'),
          h('td', { 'data-label': 'Trigger', class: 'small' }, triggerText(e.trigger)),
          h('td', { 'data-label': 'Started' }, timeEl(e.startTime)),
          h('td', { 'data-label': 'Duration' }, ACTIVE.has(e.status) ? 'running' : duration(e.startTime, e.lastUpdateTime)),
          h('td', { 'data-label': 'Summary', class: 'small' }, e.statusSummary || '')))));
    }
  }

  // -- #/pipelines/<name>/executions/<id> --------------------------------------------
  class ExecutionView extends View {
    constructor(name, id) {
      super();
      this.name = name;
      this.id = id;
      this.interval = 1000;
      this.declByVersion = new Map();
      this.plans = new Map(); // stage -> { key, plan }
      this.retrier = new Retrier(name, () => { if (this.last) this.render(); });
      this.headBox = h('div', {});
      this.info = h('div', {});
      this.body = h('div', {});
      this.extra = h('div', { class: 'exec-extra' });
      this.root.append(this.headBox, this.info, this.body, this.extra);
      document.title = `Execution ${shortId(id)} · ${name} · Pipewright`;
    }

    async refresh() {
      const [exec, runs] = await Promise.all([
        api('GetPipelineExecution', { pipelineName: this.name, pipelineExecutionId: this.id }),
        apiAll('ListActionExecutions', { pipelineName: this.name, filter: { pipelineExecutionId: this.id } }, 'actionExecutionDetails'),
      ]);
      const e = exec.pipelineExecution;
      if (!this.declByVersion.has(e.pipelineVersion)) {
        const p = await api('GetPipeline', { name: this.name, version: e.pipelineVersion });
        this.declByVersion.set(e.pipelineVersion, p.pipeline);
      }
      const decl = this.declByVersion.get(e.pipelineVersion);
      runs.sort((a, b) => a.startTime - b.startTime);
      const stages = (decl.stages || []).map((s) => this.stageSummary(s, runs.filter((r) => r.stageName === s.name), e));
      await this.loadPlans(stages);
      for (const st of stages) this.retrier.observe(st.decl.name, st.snap);
      this.last = { e, runs, decl, stages };
      this.render();
    }

    // One stage of this execution: its attempts, each action's latest
    // attempt, the stage's status derived from them, the Retrier's snapshot.
    stageSummary(s, runs, e) {
      const latest = new Map();
      for (const r of runs) latest.set(r.actionName, r); // runs are sorted by start
      const statuses = [...latest.values()].map((r) => r.status);
      let status = null;
      if (statuses.includes('InProgress')) status = 'InProgress';
      else if (statuses.includes('Failed')) status = 'Failed';
      else if (statuses.some((x) => x === 'Stopped' || x === 'Abandoned')) status = 'Stopped';
      else if (statuses.length && (s.actions || []).every((a) => latest.has(a.name) && latest.get(a.name).status === 'Succeeded')) status = 'Succeeded';
      else if (statuses.length) status = ACTIVE.has(e.status) ? 'InProgress' : e.status;
      const snap = status ? {
        execId: this.id, status,
        actions: (s.actions || []).map((a) => {
          const r = latest.get(a.name);
          const res = (r && r.output && r.output.executionResult) || {};
          return {
            name: a.name, id: r && r.actionExecutionId, status: r && r.status, error: res.errorDetails,
            log: r && res.externalExecutionUrl ? routes.log(this.name, this.id, r.actionExecutionId) : null,
          };
        }),
      } : null;
      return { decl: s, runs, status, snap };
    }

    // GetStageRetryPlan for each stage that failed or stopped, asked again
    // only when the stage's attempts changed.
    async loadPlans(stages) {
      await Promise.all(stages.map(async (st) => {
        const name = st.decl.name;
        const failed = st.status === 'Failed' || st.status === 'Stopped';
        if (!failed) { this.plans.delete(name); return; }
        const key = JSON.stringify(st.snap.actions.map((a) => [a.id, a.status]));
        const have = this.plans.get(name);
        if (have && have.key === key && !have.plan.fallback) return;
        let plan;
        try {
          plan = await api('GetStageRetryPlan', { pipelineName: this.name, stageName: name, pipelineExecutionId: this.id }, PIPEWRIGHT);
        } catch (err) {
          if (err.code === 'NetworkError') throw err;
          const no = { retryable: false, reason: `The retry plan is unavailable: ${err.message}` };
          plan = { fallback: true, plans: { FAILED_ACTIONS: no, ALL_ACTIONS: no } };
        }
        this.plans.set(name, { key, plan });
      }));
    }

    render() {
      const { e, runs, stages } = this.last;
      const active = ACTIVE.has(e.status);
      // A finished execution changes only if someone retries it: poll slowly.
      this.interval = active ? 1000 : 3000;
      reconcile(this.headBox, [{
        key: 'head', sig: String(active),
        render: () => this.head([['Pipelines', routes.pipelines()], [this.name, routes.pipeline(this.name)], ['Executions', routes.history(this.name)]],
          h('span', {}, 'Execution ', h('span', { class: 'mono' }, shortId(this.id))), null,
          [h('a', { class: 'btn', href: routes.pipeline(this.name) }, 'Pipeline view'),
            h('button', { class: 'btn danger', type: 'button', disabled: !active, 'data-focus': 'stop', onclick: () => openStopDialog(this.name, [{ pipelineExecutionId: this.id, status: 'InProgress' }]) }, 'Stop execution')]),
      }]);
      const first = runs.reduce((m, r) => Math.min(m, r.startTime || Infinity), Infinity);
      const last = runs.reduce((m, r) => Math.max(m, r.lastUpdateTime || 0), 0);
      reconcile(this.info, [{
        key: 'info', sig: JSON.stringify([e, first, last]),
        render: () => h('section', { class: 'panel', 'aria-label': 'Execution summary' },
          h('dl', { class: 'kv' },
            h('dt', {}, 'Status'), h('dd', {}, badge(e.status)),
            h('dt', {}, 'Execution ID'), h('dd', { class: 'mono' }, e.pipelineExecutionId),
            h('dt', {}, 'Trigger'), h('dd', {}, triggerText(e.trigger)),
            h('dt', {}, 'Pipeline version'), h('dd', {}, String(e.pipelineVersion)),
            Number.isFinite(first) ? [h('dt', {}, 'Started'), h('dd', {}, absTime(first), ' (', timeEl(first), ')')] : null,
            Number.isFinite(first) && last ? [h('dt', {}, active ? 'Running for' : 'Took'), h('dd', {}, active ? runDuration(first, null, true) : duration(first, last))] : null,
            (e.artifactRevisions || []).length ? [h('dt', {}, 'Source'), h('dd', {}, e.artifactRevisions.map((r) => `${r.name}: ${r.revisionSummary || shortId(r.revisionId)}`).join('; '))] : null,
            e.statusSummary ? [h('dt', {}, 'Summary'), h('dd', {}, e.statusSummary)] : null)),
      }]);
      reconcile(this.body, stages.map((st) => {
        const plan = this.plans.get(st.decl.name);
        return {
          key: st.decl.name, sig: JSON.stringify([st.decl, st.runs, st.status, plan && plan.plan, this.retrier.sig(st.decl.name)]),
          render: () => this.stage(st, plan && plan.plan),
        };
      }));
      reconcile(this.extra, [
        { key: 'timeline', sig: JSON.stringify([runs, active, stages.map((st) => st.decl.name)]), render: () => this.timeline(stages, active) },
        { key: 'variables', sig: JSON.stringify([e.variables, runs.map((r) => [r.actionExecutionId, r.input, r.output && r.output.outputVariables])]), render: () => this.variables(e, stages) },
      ]);
    }

    stage(st, plan) {
      const s = st.decl;
      const titleId = nextId('xs');
      const byAction = new Map();
      for (const r of st.runs) {
        if (!byAction.has(r.actionName)) byAction.set(r.actionName, []);
        byAction.get(r.actionName).push(r);
      }
      return h('section', { class: `panel exec-stage stage ${st.status ? statusClass(st.status) : ''}`, 'aria-labelledby': titleId },
        h('div', { class: 'panel-head' }, h('h2', { id: titleId }, s.name),
          st.status ? badge(st.status) : h('span', { class: 'badge s-idle' }, "Didn't run")),
        st.runs.length ? h('table', { class: 'grid stack attempts' },
          h('caption', { class: 'sr-only' }, `Action attempts in ${s.name}`),
          h('colgroup', {}, ['c-action', 'c-attempt', 'c-status', 'c-started', 'c-duration', 'c-result', 'c-log'].map((c) => h('col', { class: c }))),
          h('thead', {}, h('tr', {}, ['Action', 'Attempt', 'Status', 'Started', 'Duration', 'Result', 'Log'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, (s.actions || []).flatMap((a) => (byAction.get(a.name) || []).map((r, i) => h('tr', {},
            h('td', { 'data-label': 'Action' }, h('b', {}, a.name)),
            h('td', { 'data-label': 'Attempt', class: 'num' }, `#${i + 1}`),
            h('td', { 'data-label': 'Status' }, badge(r.status)),
            h('td', { 'data-label': 'Started', class: 'num' }, h('span', { title: absTime(r.startTime) }, absTime(r.startTime))),
            h('td', { 'data-label': 'Duration', class: 'num' }, runDuration(r.startTime, r.lastUpdateTime, r.status === 'InProgress')),
            h('td', { 'data-label': 'Result', class: 'small' }, resultText(r)),
            h('td', { 'data-label': 'Log' }, r.output && r.output.executionResult && r.output.executionResult.externalExecutionUrl
              ? h('a', { class: 'btn small', href: routes.log(this.name, this.id, r.actionExecutionId) }, 'Log', h('span', { class: 'sr-only' }, ` of ${a.name} attempt ${i + 1}`))
              : null)))))) : h('p', { class: 'empty' }, 'This execution did not run this stage.'),
        this.retrier.foot(s.name, this.id, plan, (s.actions || []).map((a) => a.name)));
    }

    // Start–end bars: each stage, then each of its attempts, on one time axis.
    timeline(stages, active) {
      const titleId = nextId('tl');
      const now = Date.now() / 1000;
      const rows = [];
      for (const st of stages) {
        if (!st.runs.length) continue;
        const endOf = (r) => (r.status === 'InProgress' ? now : r.lastUpdateTime || r.startTime);
        const start = Math.min(...st.runs.map((r) => r.startTime));
        const end = Math.max(...st.runs.map(endOf));
        rows.push({ kind: 'tl-stage', label: st.decl.name, status: st.status, start, end, running: st.status === 'InProgress' });
        const n = new Map();
        for (const r of st.runs) {
          n.set(r.actionName, (n.get(r.actionName) || 0) + 1);
          rows.push({ kind: 'tl-action', label: `${r.actionName} #${n.get(r.actionName)}`, status: r.status, start: r.startTime, end: endOf(r), running: r.status === 'InProgress' });
        }
      }
      const head = h('div', { class: 'panel-head' }, h('h2', { id: titleId }, 'Timeline'));
      if (!rows.length) return h('section', { class: 'panel', 'aria-labelledby': titleId }, head, h('p', { class: 'empty' }, 'Nothing has run yet.'));
      const t0 = Math.min(...rows.map((r) => r.start));
      const t1 = Math.max(t0 + 1, ...rows.map((r) => r.end));
      head.append(h('span', { class: 'muted small' }, `${clockTime(t0)} – ${active ? 'now' : clockTime(t1)}`));
      return h('section', { class: 'panel', 'aria-labelledby': titleId }, head,
        h('ol', { class: 'timeline' }, rows.map((r) => {
          const bar = h('span', { class: `tl-bar ${statusClass(r.status)}` });
          // CSSOM, not a style attribute: the page's CSP allows no inline style.
          bar.style.left = `${((r.start - t0) / (t1 - t0)) * 100}%`;
          bar.style.width = `${Math.max(0.6, ((r.end - r.start) / (t1 - t0)) * 100)}%`;
          return h('li', { class: `tl-row ${r.kind}` },
            h('span', { class: 'tl-label' }, r.label, h('span', { class: 'sr-only' }, ` ${statusLabel(r.status)}`)),
            h('span', { class: 'tl-track', 'aria-hidden': 'true' }, bar),
            h('span', { class: 'tl-time' }, `${clockTime(r.start)} – ${r.running ? 'now' : clockTime(r.end)}`, ' · ',
              r.running ? runDuration(r.start, null, true) : duration(r.start, r.end)));
        })));
    }

    // The execution's variables (V2 pipeline variables), each action's output
    // variables (namespace.name), and configuration values resolved from #{…}.
    variables(e, stages) {
      const titleId = nextId('vars');
      const rows = [];
      for (const v of e.variables || []) rows.push(['Pipeline', `variables.${v.name}`, v.resolvedValue]);
      for (const st of stages) {
        const latest = new Map();
        for (const r of st.runs) latest.set(r.actionName, r);
        for (const r of latest.values()) {
          const ns = (r.input && r.input.namespace) || '';
          for (const [k, v] of Object.entries((r.output && r.output.outputVariables) || {})) {
            rows.push([`${st.decl.name} / ${r.actionName}`, ns ? `${ns}.${k}` : k, v]);
          }
          const cfg = (r.input && r.input.configuration) || {};
          const resolved = (r.input && r.input.resolvedConfiguration) || {};
          for (const [k, v] of Object.entries(cfg)) {
            if (typeof v === 'string' && v.includes('#{') && resolved[k] !== undefined && resolved[k] !== v) {
              rows.push([`${st.decl.name} / ${r.actionName}`, `${k} (resolved)`, resolved[k]]);
            }
          }
        }
      }
      return h('section', { class: 'panel', 'aria-labelledby': titleId },
        h('div', { class: 'panel-head' }, h('h2', { id: titleId }, 'Variables')),
        rows.length ? h('table', { class: 'grid stack vars' },
          h('caption', { class: 'sr-only' }, 'Variables of this execution'),
          h('thead', {}, h('tr', {}, ['Where', 'Name', 'Value'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, rows.map(([where, n, v]) => h('tr', {},
            h('td', { 'data-label': 'Where', class: 'small' }, where),
            h('td', { 'data-label': 'Name', class: 'mono' }, n),
            h('td', { 'data-label': 'Value', class: 'mono value' }, v)))))
          : h('p', { class: 'empty' }, 'This execution has no variables.'));
    }
  }

  function resultText(r) {
    const res = (r.output && r.output.executionResult) || {};
    if (res.errorDetails) return h('span', { class: 'error-text' }, h('b', {}, `${res.errorDetails.code}: `), res.errorDetails.message);
    return res.externalExecutionSummary ? res.externalExecutionSummary.trim() : (r.updatedBy ? `by ${r.updatedBy}` : '');
  }

  // -- #/pipelines/<name>/executions/<id>/logs/<actionExecutionId> -------------------
  class LogView extends View {
    constructor(name, execId, actionId) {
      super();
      this.name = name;
      this.execId = execId;
      this.actionId = actionId;
      this.offset = 0;
      this.decoder = new TextDecoder();
      this.ansiStyle = {}; // SGR state carried from one chunk to the next
      this.lines = 0;
      this.line = null; // the last line's element, which the next chunk continues
      this.pre = h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Log output', 'aria-live': 'off' });
      this.follow = h('input', { type: 'checkbox', checked: true });
      this.state = h('span', { class: 'muted small' }, 'Loading…');
      // The raw bytes, as the API serves them (text/plain), to save or open.
      this.raw = h('a', { class: 'btn small', href: `/logs/${enc(actionId)}`, download: `${actionId}.log`, hidden: true }, 'Download raw log');
      this.headBox = h('div', {});
      this.root.append(this.headBox,
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' }, this.state, h('span', { class: 'log-tools' }, this.raw, h('label', { class: 'follow' }, this.follow, 'Follow'))),
          this.pre));
      document.title = `Log · ${name} · Pipewright`;
    }

    async refresh() {
      const runs = await apiAll('ListActionExecutions', { pipelineName: this.name, filter: { pipelineExecutionId: this.execId } }, 'actionExecutionDetails');
      const r = runs.find((x) => x.actionExecutionId === this.actionId);
      if (!r) throw new ApiError('ActionExecutionNotFoundException', `No action execution ${this.actionId} in execution ${this.execId}.`, 400);
      reconcile(this.headBox, [{
        key: 'head', sig: r.status,
        render: () => this.head([['Pipelines', routes.pipelines()], [this.name, routes.pipeline(this.name)],
          [`Execution ${shortId(this.execId)}`, routes.execution(this.name, this.execId)]],
        `${r.stageName} / ${r.actionName}`, [badge(r.status), h('span', { class: 'mono' }, this.actionId)],
        [h('a', { class: 'btn', href: routes.execution(this.name, this.execId) }, 'Execution detail')]),
      }]);
      const hasLog = r.output && r.output.executionResult && r.output.executionResult.externalExecutionUrl;
      const running = !TERMINAL.has(r.status);
      let got = 0;
      if (hasLog) {
        const res = await fetch(`/logs/${enc(this.actionId)}?offset=${this.offset}`, { cache: 'no-store' });
        if (session.required && (res.status === 401 || res.status === 403)) {
          showSignIn('Your session has ended. Sign in again to continue.');
          throw new ApiError('SessionEnded', 'Your session has ended.', res.status);
        }
        if (res.ok) {
          const bytes = new Uint8Array(await res.arrayBuffer());
          got = bytes.length;
          this.offset += got;
          // stream: a character split across two polls is decoded whole.
          const text = this.decoder.decode(bytes, { stream: running });
          if (text) {
            this.appendText(text);
            if (this.follow.checked) this.pre.scrollTop = this.pre.scrollHeight;
          }
        }
      }
      this.raw.hidden = !hasLog;
      if (!hasLog) {
        this.state.textContent = running ? 'Waiting for output…' : 'This action keeps no log.';
      } else if (running) {
        this.state.textContent = 'Following the log live…';
      } else if (got === 0) {
        this.state.textContent = `Complete · ${this.offset} bytes`;
        if (!this.lines) this.pre.textContent = '(no output)';
        this.done = true; // finished and fully read: stop polling
        setLive('on', 'Live');
      }
    }
  }

  // Log text into numbered lines (a block <span class="line" data-n> each;
  // CSS shows the number, which selecting and copying the text leaves out).
  LogView.prototype.appendText = function appendText(text) {
    const parts = text.split('\n');
    parts.forEach((part, i) => {
      if (i > 0 || !this.line) {
        if (i === parts.length - 1 && part === '') { this.line = null; return; } // ends with a newline
        this.lines += 1;
        this.line = h('span', { class: 'line', 'data-n': this.lines });
        this.pre.append(this.line);
      }
      this.line.append(...ansiNodes(part, this.ansiStyle));
    });
  };

  // ---- Router ------------------------------------------------------------------
  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    if (!parts.length) return new PipelinesView();
    if (parts[0] === 'pipelines' && parts[1]) {
      const [, name, section, id, sub, aid] = parts;
      if (!section) return new PipelineView(name);
      if (section === 'executions' && !id) return new HistoryView(name);
      if (section === 'executions' && id && !sub) return new ExecutionView(name, id);
      if (section === 'executions' && id && sub === 'logs' && aid) return new LogView(name, id, aid);
    }
    const v = new View();
    v.refresh = async () => {};
    v.notFound({ message: `There is no page at ${location.hash}.` });
    return v;
  }

  function show(navigated) {
    const view = route();
    view.focusHeading = navigated;
    const main = $('#main');
    main.replaceChildren(view.root);
    lostFocus = null;
    const dlg = $('#dialog');
    if (dlg.open) dlg.close();
    setBanner('');
    window.scrollTo(0, 0);
    poller.start(view);
  }

  // ---- Sign-in ------------------------------------------------------------------
  function setSignedIn(info) {
    session.csrf = info.csrfToken || '';
    session.identity = info.identity || '';
    const user = $('#user');
    user.hidden = !session.csrf;
    $('#identity').textContent = session.identity ? `Signed in as ${session.identity.split('/').pop()}` : '';
    $('#identity').title = session.identity;
  }

  // Replaces the page with the sign-in form; `message` says why (optional).
  function showSignIn(message) {
    poller.view = null;
    clearTimeout(poller.timer);
    setSignedIn({});
    setBanner('');
    setLive('off', 'Signed out');
    const dlg = $('#dialog');
    if (dlg.open) dlg.close();
    const akid = h('input', { id: 'signin-akid', name: 'accessKeyId', type: 'text', autocomplete: 'username',
      autocapitalize: 'none', spellcheck: 'false', required: true });
    const secret = h('input', { id: 'signin-secret', name: 'secretAccessKey', type: 'password',
      autocomplete: 'current-password', required: true });
    const error = h('p', { id: 'signin-error', class: 'signin-error', role: 'alert' }, message || '');
    const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
    const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-title', novalidate: true },
      h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in'),
      h('p', { class: 'muted' }, 'This server requires an access key. Use one from its keys file (--auth-keys-file).'),
      h('div', { class: 'field' }, h('label', { for: 'signin-akid' }, 'Access key ID'), akid),
      h('div', { class: 'field' }, h('label', { for: 'signin-secret' }, 'Secret access key'), secret),
      error, submit);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!akid.value || !secret.value) {
        error.textContent = 'Enter both the access key ID and the secret access key.';
        (akid.value ? secret : akid).focus();
        return;
      }
      submit.disabled = true;
      error.textContent = '';
      try {
        const res = await fetch(SESSION_URL, {
          method: 'POST', cache: 'no-store', credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ accessKeyId: akid.value, secretAccessKey: secret.value }),
        });
        const data = await res.json().catch(() => ({}));
        if (res.ok) {
          secret.value = '';
          setSignedIn(data);
          show(true);
          return;
        }
        error.textContent = res.status === 401
          ? 'The access key ID or the secret access key is wrong.'
          : data.message || `Sign-in failed (HTTP ${res.status}).`;
        secret.select();
        secret.focus();
      } catch (e) {
        error.textContent = `Cannot reach the Pipewright server at ${location.host}.`;
      } finally {
        submit.disabled = false;
      }
    });
    $('#main').replaceChildren(form);
    akid.focus();
  }

  async function signOut() {
    try {
      await fetch(SESSION_URL, {
        method: 'DELETE', cache: 'no-store', credentials: 'same-origin',
        headers: { 'X-Pw-Csrf': session.csrf },
      });
    } catch (e) {
      // The server is away: forget the session here anyway.
    }
    showSignIn('You have signed out.');
  }

  async function start() {
    let info = { authRequired: false };
    try {
      const res = await fetch(SESSION_URL, { cache: 'no-store', credentials: 'same-origin' });
      // 404: a server without sign-in (older, or auth off): nothing to do.
      if (res.status !== 404) info = await res.json().catch(() => ({ authRequired: false }));
    } catch (e) {
      // Network error: show the page; the poller reports the server as away.
    }
    session.required = Boolean(info.authRequired);
    if (session.required && !info.csrfToken) {
      showSignIn('');
      return;
    }
    setSignedIn(info);
    show(false);
  }

  $('#signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', () => {
    if (session.required && !session.csrf) return; // stay on the sign-in form
    show(true);
  });
  start();
})();
