// Small helpers for the Hearth web app: building elements, announcing to screen readers,
// a short chime (WebAudio, no sound files), and keeping keyboard focus across re-renders.

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * Creates an element. `attrs`: `class`, `on<event>` handlers, `dataset`-style `data-*`,
 * boolean attributes (true adds, false/null/undefined leaves out), anything else as an
 * attribute; `value`, `checked` and `selected` are set as properties after the children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  /** @type {Array<[string, unknown]>} */
  const late = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else if (k === 'class') {
      el.className = String(v);
    } else if (k === 'value' || k === 'checked' || k === 'selected') {
      late.push([k, v]);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  for (const [k, v] of late) {
    /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (el))[k] = v;
  }
  return el;
}

/**
 * @param {Element} el
 * @param {Array<Child | Child[]>} children
 */
export function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/**
 * Replaces an element's children, keeping keyboard focus: if the focused element inside it had
 * a `data-k` key, the new element with the same key gets focus back.
 * @param {Element} el
 * @param {Array<Child | Child[]>} children
 */
export function replace(el, ...children) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.getAttribute('data-k') : null;
  el.replaceChildren();
  append(el, children);
  if (key) {
    const again = el.querySelector(`[data-k="${CSS.escape(key)}"]`);
    if (again instanceof HTMLElement) again.focus();
  }
}

/**
 * Says something through an aria-live region. The same text twice is announced twice.
 * @param {string} id the live region's id
 * @param {string} text
 */
export function announce(id, text) {
  const region = document.getElementById(id);
  if (!region) return;
  region.textContent = '';
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

/** @type {AudioContext | null} */
let audio = null;

/** Creates the AudioContext during a user gesture (browsers start it suspended otherwise). */
export function unlockAudio() {
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') void audio.resume();
  } catch {
    audio = null;
  }
}

/** A short two-note chime. */
export function chime() {
  try {
    audio ??= new AudioContext();
    const ctx = audio;
    if (ctx.state === 'suspended') void ctx.resume();
    const start = ctx.currentTime + 0.02;
    [660, 880].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      const t = start + i * 0.18;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.32);
    });
  } catch {
    // No sound available: the visual and spoken announcements remain.
  }
}

/**
 * "4:05" for a number of milliseconds (never negative).
 * @param {number} ms
 */
export function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * A time of day, "14:05".
 * @param {number} at milliseconds since the epoch
 */
export function timeOfDay(at) {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * A modal confirmation built on <dialog>. Resolves with the form's values when confirmed, or
 * null when cancelled (Escape or the cancel button).
 * @param {{title: string, text?: string, confirm: string, cancel?: string,
 *          fields?: Array<{name: string, label: string, type?: 'checkbox'|'text'}>}} opts
 * @returns {Promise<Record<string, string | boolean> | null>}
 */
export function confirmDialog(opts) {
  return new Promise((resolve) => {
    /** @type {Record<string, HTMLInputElement>} */
    const inputs = {};
    const fields = (opts.fields ?? []).map((f) => {
      const id = `dlg-${f.name}`;
      const input = h('input', { id, type: f.type ?? 'text', name: f.name });
      inputs[f.name] = input;
      return f.type === 'checkbox'
        ? h('p', { class: 'check' }, input, h('label', { for: id }, f.label))
        : h('p', {}, h('label', { for: id }, f.label), input);
    });
    const dialog = h('dialog', { 'aria-labelledby': 'dlg-title' });
    /** @param {boolean} ok */
    const finish = (ok) => {
      /** @type {Record<string, string | boolean>} */
      const values = {};
      for (const [name, input] of Object.entries(inputs)) {
        values[name] = input.type === 'checkbox' ? input.checked : input.value;
      }
      dialog.close();
      dialog.remove();
      resolve(ok ? values : null);
    };
    append(dialog, [
      h('h2', { id: 'dlg-title' }, opts.title),
      opts.text ? h('p', {}, opts.text) : null,
      ...fields,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'danger', onclick: () => finish(true) }, opts.confirm),
        h('button', { type: 'button', onclick: () => finish(false) }, opts.cancel ?? 'Cancel')),
    ]);
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
