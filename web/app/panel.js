// The facilitator panel (staff only): the waiting room, help requests, hands, the people in
// the room, room settings, breakouts and ending the session. Every control is a real button or
// form control with an accessible name that says whom it acts on ("Admit Sam").

import { h, replace, announce, clock, timeOfDay, confirmDialog } from './dom.js';

const STAFF = new Set(['facilitator', 'cofacilitator']);
const ROLES = [
  ['facilitator', 'Facilitator'], ['cofacilitator', 'Co-facilitator'], ['participant', 'Participant'],
  ['guest', 'Guest'], ['observer', 'Observer'],
];

/**
 * @typedef {import('./app.js').Session} Session
 * @typedef {import('../sdk/protocol').ClientType} ClientType
 */
/**
 * @template {ClientType} T
 * @typedef {import('../sdk/protocol').ClientFields<T>} ClientFields
 */

export class Panel {
  /**
   * @param {HTMLElement} root
   * @param {Session} app
   */
  constructor(root, app) {
    this.root = root;
    this.app = app;
    /** @type {Map<string, string>} member id -> index of the planned breakout ('' = not assigned) */
    this.assign = new Map();

    const noteText = h('textarea', { id: 'wr-note', rows: '2', maxlength: '2000' });
    const broadcastText = h('textarea', { id: 'bo-broadcast', rows: '2', maxlength: '2000' });
    this.names = h('textarea', { id: 'bo-names', rows: '3' });
    this.names.value = 'Breakout 1\nBreakout 2';
    this.names.addEventListener('input', () => this.renderAssign());
    this.auto = h('input', { type: 'checkbox', id: 'bo-auto' });
    this.minutes = h('input', { type: 'number', id: 'bo-minutes', min: '1', max: '240', inputmode: 'numeric' });

    replace(root,
      h('h2', { id: 'panel-title' }, 'Facilitator panel'),
      h('section', { 'aria-labelledby': 'wr-title' },
        h('h3', { id: 'wr-title' }, 'Waiting room'),
        h('ul', { id: 'wr-list', class: 'list' }),
        h('div', { class: 'row' },
          h('button', { type: 'button', id: 'admit-all', onclick: () => this.act('admit-all', {}, (a) => `Admitted ${a?.admitted?.length ?? 0}.`) }, 'Admit all ready')),
        h('form', {
          onsubmit: (/** @type {Event} */ e) => {
            e.preventDefault();
            const text = noteText.value.trim();
            if (text) this.act('message-waiting-room', { text }, () => { noteText.value = ''; return 'Message sent to the waiting room.'; });
          },
        },
        h('p', {}, h('label', { for: 'wr-note' }, 'Message to the waiting room'), noteText),
        h('button', { type: 'submit' }, 'Send to waiting room'))),
      h('section', { 'aria-labelledby': 'help-title' },
        h('h3', { id: 'help-title' }, 'Help requests'),
        h('ul', { id: 'help-list', class: 'list', 'aria-live': 'polite' })),
      h('section', { 'aria-labelledby': 'hands-title' },
        h('h3', { id: 'hands-title' }, 'Raised hands'),
        h('ol', { id: 'hands-list', class: 'list' }),
        h('button', { type: 'button', onclick: () => this.act('lower-all-hands', {}) }, 'Lower all hands')),
      h('section', { 'aria-labelledby': 'people-title' },
        h('h3', { id: 'people-title' }, 'People in the room'),
        h('ul', { id: 'people-list', class: 'list' }),
        h('button', { type: 'button', onclick: () => this.act('mute-all', {}, () => 'Everyone is muted.') }, 'Mute everyone')),
      h('section', { 'aria-labelledby': 'bo-title' },
        h('h3', { id: 'bo-title' }, 'Breakout rooms'),
        h('div', { id: 'bo-plan-form' },
          h('p', {}, h('label', { for: 'bo-names' }, 'Breakout names (one per line)'), this.names),
          h('div', { id: 'bo-assign' }),
          h('p', { class: 'check' }, this.auto, h('label', { for: 'bo-auto' }, 'Share out everyone not assigned automatically')),
          h('button', { type: 'button', id: 'bo-save', onclick: () => this.savePlan() }, 'Save plan')),
        h('div', { id: 'bo-plan' }),
        h('div', { id: 'bo-open-form' },
          h('p', {}, h('label', { for: 'bo-minutes' }, 'Time limit in minutes (empty: no limit)'), this.minutes),
          h('button', { type: 'button', id: 'bo-open', onclick: () => this.openBreakouts() }, 'Open breakouts')),
        h('div', { id: 'bo-open-now' }),
        h('form', {
          id: 'bo-broadcast-form', onsubmit: (/** @type {Event} */ e) => {
            e.preventDefault();
            const text = broadcastText.value.trim();
            if (text) this.act('breakout-broadcast', { text }, () => { broadcastText.value = ''; return 'Message sent to every breakout.'; });
          },
        },
        h('p', {}, h('label', { for: 'bo-broadcast' }, 'Message to every breakout'), broadcastText),
        h('button', { type: 'submit' }, 'Send to every breakout'))),
      h('section', { 'aria-labelledby': 'settings-title' },
        h('h3', { id: 'settings-title' }, 'Room settings'),
        h('div', { id: 'settings' })),
      h('section', { id: 'end-section', 'aria-labelledby': 'end-title' },
        h('h3', { id: 'end-title' }, 'End the session'),
        h('button', { type: 'button', class: 'danger', id: 'end-button', onclick: () => this.end() }, 'End session')),
      h('p', { id: 'panel-status', class: 'hint', role: 'status', 'aria-live': 'polite' }));
  }

  get model() {
    return this.app.model;
  }

  isFacilitator() {
    return this.app.me()?.role === 'facilitator';
  }

  /** @param {string} id */
  alias(id) {
    return this.model.members.get(id)?.alias ?? this.model.waiting?.get(id)?.alias ?? 'someone';
  }

  /**
   * Sends a staff command; says what happened.
   * @template {ClientType} T
   * @param {T} type
   * @param {ClientFields<T>} fields
   * @param {(ack: any) => string | void} [done]
   */
  act(type, fields, done) {
    this.app.client.request(type, fields).then((ack) => {
      const text = done?.(ack);
      if (text) this.say(text);
    }).catch((/** @type {any} */ err) => {
      this.say(`That did not work: ${err?.message ?? err}`);
    });
  }

  /** @param {string} text */
  say(text) {
    const el = document.getElementById('panel-status');
    if (el) el.textContent = text;
    announce('live-polite', text);
  }

  render() {
    this.renderWaiting();
    this.renderHelp();
    this.renderHands();
    this.renderPeople();
    this.renderSettings();
    this.renderBreakouts();
    const end = document.getElementById('end-section');
    if (end) end.hidden = !this.isFacilitator();
  }

  renderWaiting() {
    const list = document.getElementById('wr-list');
    if (!list) return;
    /** @type {any[]} */
    const waiting = [...(this.model.waiting?.values() ?? [])].sort((a, b) => a.since - b.since);
    const title = document.getElementById('wr-title');
    if (title) title.textContent = `Waiting room (${waiting.length})`;
    replace(list, ...(waiting.length === 0 ? [h('li', { class: 'hint' }, 'Nobody is waiting.')] : waiting.map((w) =>
      h('li', { 'data-member': w.id, class: w.ready ? 'ready' : '' },
        h('strong', {}, w.alias), ' ', h('span', { class: 'badge' }, roleName(w.role)), ' ',
        h('span', { class: w.ready ? 'badge ok' : 'badge warn' }, w.ready ? 'Ready' : 'Not ready yet'),
        w.connected === false ? h('span', { class: 'badge warn' }, 'Reconnecting…') : null,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Agreement'), h('dd', {}, w.consentVersion ? `version ${w.consentVersion}` : 'not yet'),
          h('dt', {}, 'Location'), h('dd', {}, w.location ?? 'not given'),
          h('dt', {}, 'Waiting since'), h('dd', {}, timeOfDay(w.since))),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'primary', 'data-k': `admit-${w.id}`, 'aria-label': `Admit ${w.alias}`, onclick: () => this.act('admit', { member: w.id }, () => `${w.alias} was admitted.`) }, 'Admit'),
          h('button', { type: 'button', 'data-k': `deny-${w.id}`, 'aria-label': `Deny ${w.alias}`, onclick: () => this.deny(w) }, 'Deny'),
          h('button', { type: 'button', 'data-k': `wremove-${w.id}`, 'aria-label': `Remove ${w.alias}`, onclick: () => this.remove(w) }, 'Remove…'))))));
  }

  /** @param {any} w */
  async deny(w) {
    const values = await confirmDialog({
      title: `Turn ${w.alias} away?`, text: 'They will be told, and may join again later with their link.',
      confirm: 'Deny', fields: [{ name: 'reason', label: 'Reason shown to them (optional)' }],
    });
    if (!values) return;
    const reason = String(values.reason ?? '').trim();
    this.act('deny', reason ? { member: w.id, reason } : { member: w.id }, () => `${w.alias} was turned away.`);
  }

  /** @param {any} m */
  async remove(m) {
    const values = await confirmDialog({
      title: `Remove ${m.alias}?`, confirm: 'Remove',
      fields: [
        { name: 'ban', label: 'Do not let them back into this session (ban)', type: 'checkbox' },
        { name: 'reason', label: 'Reason shown to them (optional)' },
      ],
    });
    if (!values) return;
    const reason = String(values.reason ?? '').trim();
    const ban = values.ban === true;
    this.act('remove', reason ? { member: m.id, ban, reason } : { member: m.id, ban }, () => `${m.alias} was removed${values.ban ? ' and banned' : ''}.`);
  }

  renderHelp() {
    const list = document.getElementById('help-list');
    if (!list) return;
    /** @type {Array<[string, number]>} */
    const open = [...(this.model.help?.entries() ?? [])].sort((a, b) => a[1] - b[1]);
    const before = list.dataset.count ? Number(list.dataset.count) : 0;
    if (open.length > before) {
      const [id] = open[open.length - 1];
      announce('live-assertive', `${this.alias(id)} asked for help.`);
    }
    list.dataset.count = String(open.length);
    replace(list, ...(open.length === 0 ? [h('li', { class: 'hint' }, 'No open requests.')] : open.map(([id, at]) => {
      const name = this.alias(id);
      return h('li', { 'data-member': id, class: 'alert' },
        h('strong', {}, name), ` asked for help at ${timeOfDay(at)}. `,
        h('button', { type: 'button', 'data-k': `ack-${id}`, 'aria-label': `Acknowledge help for ${name}`, onclick: () => this.act('acknowledge-help', { member: id }, () => `${name} was told you saw their request.`) }, 'Acknowledge'));
    })));
  }

  renderHands() {
    const list = document.getElementById('hands-list');
    if (!list) return;
    /** @type {any[]} */
    const hands = this.model.hands();
    replace(list, ...(hands.length === 0 ? [h('li', { class: 'hint' }, 'No hands raised.')] : hands.map((m) =>
      h('li', { 'data-member': m.id },
        h('span', { class: 'name' }, m.alias), ` since ${timeOfDay(m.handRaisedAt)} `,
        h('button', { type: 'button', class: 'small', 'data-k': `lower-${m.id}`, 'aria-label': `Lower ${m.alias}'s hand`, onclick: () => this.act('lower-hand', { member: m.id }) }, 'Lower')))));
  }

  renderPeople() {
    const list = document.getElementById('people-list');
    if (!list) return;
    const myId = this.app.myId();
    const spotlight = this.model.state?.spotlight;
    const fac = this.isFacilitator();
    const open = /** @type {any[]} */ (this.model.breakouts?.open ?? []);
    /** @type {any[]} */
    const members = [...this.model.members.values()].filter((m) => m.id !== myId);
    replace(list, ...(members.length === 0 ? [h('li', { class: 'hint' }, 'Nobody else is here yet.')] : members.map((m) => {
      const staff = STAFF.has(m.role);
      const where = m.breakout ? open.find((b) => b.id === m.breakout)?.name ?? 'a breakout' : null;
      const roleSelect = fac ? h('select', {
        'data-k': `role-${m.id}`, 'aria-label': `Role of ${m.alias}`,
        onchange: (/** @type {Event} */ e) => {
          const role = /** @type {import('../sdk/protocol').Role} */ (/** @type {HTMLSelectElement} */ (e.target).value);
          this.act('set-role', { member: m.id, role }, () => `${m.alias} is now ${roleName(role)}.`);
        },
      }, ...ROLES.map(([value, label]) => h('option', { value, selected: value === m.role }, label))) : null;
      const moveSelect = open.length && !staff ? h('select', {
        'data-k': `move-${m.id}`, 'aria-label': `Move ${m.alias} to`,
        onchange: (/** @type {Event} */ e) => {
          const value = /** @type {HTMLSelectElement} */ (e.target).value;
          this.act('breakout-move', { member: m.id, breakout: value || null }, () => `${m.alias} was moved.`);
        },
      }, h('option', { value: '', selected: !m.breakout }, 'Main room'),
      ...open.map((b) => h('option', { value: b.id, selected: b.id === m.breakout }, b.name))) : null;
      return h('li', { 'data-member': m.id },
        h('strong', {}, m.alias), ' ', h('span', { class: 'badge' }, roleName(m.role)),
        h('span', { class: m.audio ? 'badge' : 'badge muted' }, m.audio ? 'Mic on' : 'Mic off'),
        h('span', { class: 'badge' }, m.video ? 'Camera on' : 'Camera off'),
        m.handRaisedAt ? h('span', { class: 'badge hand' }, 'Hand raised') : null,
        m.connected === false ? h('span', { class: 'badge warn' }, 'Reconnecting…') : null,
        where ? h('span', { class: 'badge' }, `In ${where}`) : null,
        m.location ? h('p', { class: 'hint' }, `Location: ${m.location}`) : null,
        h('div', { class: 'row' },
          staff ? null : m.audio
            ? h('button', { type: 'button', class: 'small', 'data-k': `mute-${m.id}`, 'aria-label': `Mute ${m.alias}`, onclick: () => this.act('mute', { member: m.id, audio: true }, () => `${m.alias} is muted.`) }, 'Mute')
            : h('button', { type: 'button', class: 'small', 'data-k': `unmute-${m.id}`, 'aria-label': `Ask ${m.alias} to unmute`, onclick: () => this.act('ask-unmute', { member: m.id, audio: true }, () => `${m.alias} was asked to unmute.`) }, 'Ask to unmute'),
          staff || !m.video ? null : h('button', { type: 'button', class: 'small', 'data-k': `camoff-${m.id}`, 'aria-label': `Turn off ${m.alias}'s camera`, onclick: () => this.act('mute', { member: m.id, audio: false, video: true }) }, 'Camera off'),
          spotlight === m.id
            ? h('button', { type: 'button', class: 'small', 'data-k': `spot-${m.id}`, 'aria-label': `Remove the spotlight from ${m.alias}`, onclick: () => this.act('spotlight', { member: null }) }, 'Remove spotlight')
            : h('button', { type: 'button', class: 'small', 'data-k': `spot-${m.id}`, 'aria-label': `Spotlight ${m.alias}`, onclick: () => this.act('spotlight', { member: m.id }) }, 'Spotlight'),
          staff ? null : h('button', { type: 'button', class: 'small', 'data-k': `back-${m.id}`, 'aria-label': `Send ${m.alias} to the waiting room`, onclick: () => this.act('send-back', { member: m.id }, () => `${m.alias} is back in the waiting room.`) }, 'To waiting room'),
          staff ? null : h('button', { type: 'button', class: 'small', 'data-k': `aside-${m.id}`, 'aria-label': `Talk privately with ${m.alias}`, onclick: () => this.act('pull-aside', { member: m.id }, () => `You are talking privately with ${m.alias}.`) }, 'Talk privately'),
          staff ? null : h('button', { type: 'button', class: 'small danger', 'data-k': `remove-${m.id}`, 'aria-label': `Remove ${m.alias}`, onclick: () => this.remove(m) }, 'Remove…')),
        h('div', { class: 'row' },
          roleSelect ? h('label', { class: 'inline' }, 'Role ', roleSelect) : null,
          moveSelect ? h('label', { class: 'inline' }, 'Place ', moveSelect) : null,
          fac && m.role === 'observer' ? this.grantBoxes(m) : null));
    })));
  }

  /** @param {any} m */
  grantBoxes(m) {
    /** @param {'media' | 'chat'} which */
    const change = (which) => {
      const media = which === 'media' ? !m.mediaGranted : !!m.mediaGranted;
      const chat = which === 'chat' ? !m.chatGranted : !!m.chatGranted;
      this.act('grant', { member: m.id, media, chat });
    };
    return h('span', { class: 'grants' },
      h('span', { class: 'check' }, h('input', { type: 'checkbox', id: `grant-media-${m.id}`, 'data-k': `gm-${m.id}`, checked: !!m.mediaGranted, onchange: () => change('media') }),
        h('label', { for: `grant-media-${m.id}` }, `${m.alias} may use camera and microphone`)),
      h('span', { class: 'check' }, h('input', { type: 'checkbox', id: `grant-chat-${m.id}`, 'data-k': `gc-${m.id}`, checked: !!m.chatGranted, onchange: () => change('chat') }),
        h('label', { for: `grant-chat-${m.id}` }, `${m.alias} may write to everyone`)));
  }

  renderSettings() {
    const el = document.getElementById('settings');
    if (!el) return;
    const s = this.model.state;
    if (!s) return;
    const sig = JSON.stringify(s);
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    /** @param {'privateMessages' | 'selfUnmute' | 'waitingRoom'} key @param {string} label */
    const box = (key, label) => h('p', { class: 'check' },
      h('input', {
        type: 'checkbox', id: `set-${key}`, 'data-k': `set-${key}`, checked: !!s[key],
        onchange: (/** @type {Event} */ e) => this.act('settings', { [key]: /** @type {HTMLInputElement} */ (e.target).checked }),
      }), h('label', { for: `set-${key}` }, label));
    replace(el,
      h('p', {}, s.locked ? 'The room is locked: nobody new can join.' : 'The room is open to people with a link.'),
      s.locked
        ? h('button', { type: 'button', 'data-k': 'lock', onclick: () => this.act('unlock', {}, () => 'The room is unlocked.') }, 'Unlock room')
        : h('button', { type: 'button', 'data-k': 'lock', onclick: () => this.act('lock', {}, () => 'The room is locked.') }, 'Lock room'),
      h('p', {}, h('label', { for: 'set-chatPolicy' }, 'Who may chat'),
        h('select', {
          id: 'set-chatPolicy', 'data-k': 'set-chatPolicy',
          onchange: (/** @type {Event} */ e) => this.act('settings', { chatPolicy: /** @type {import('../sdk/protocol').ChatPolicy} */ (/** @type {HTMLSelectElement} */ (e.target).value) }),
        },
        h('option', { value: 'everyone', selected: s.chatPolicy === 'everyone' }, 'Everyone'),
        h('option', { value: 'staff-only', selected: s.chatPolicy === 'staff-only' }, 'Members may write to staff only'),
        h('option', { value: 'off', selected: s.chatPolicy === 'off' }, 'Chat off for members'))),
      box('privateMessages', 'Members may message each other privately'),
      box('selfUnmute', 'Members may unmute themselves after staff muted them'),
      box('waitingRoom', 'Use the waiting room (admit people by hand)'));
  }

  /** The names in the plan form, one per line. */
  plannedNames() {
    return this.names.value.split('\n').map((n) => n.trim()).filter(Boolean);
  }

  renderAssign() {
    const el = document.getElementById('bo-assign');
    if (!el) return;
    const names = this.plannedNames();
    /** @type {any[]} */
    const members = [...this.model.members.values()].filter((m) => !STAFF.has(m.role) && m.id !== this.app.myId());
    const sig = JSON.stringify([names, members.map((m) => [m.id, m.alias])]);
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    replace(el, members.length === 0 ? null : h('fieldset', {},
      h('legend', {}, 'Who goes where'),
      ...members.map((m) => h('p', {},
        h('label', { for: `assign-${m.id}` }, m.alias),
        h('select', {
          id: `assign-${m.id}`, 'data-k': `assign-${m.id}`,
          onchange: (/** @type {Event} */ e) => this.assign.set(m.id, /** @type {HTMLSelectElement} */ (e.target).value),
        },
        h('option', { value: '', selected: !this.assign.get(m.id) }, 'Not assigned'),
        ...names.map((n, i) => h('option', { value: String(i), selected: this.assign.get(m.id) === String(i) }, n)))))));
  }

  savePlan() {
    const names = this.plannedNames();
    if (names.length === 0) {
      this.say('Write at least one breakout name.');
      return;
    }
    const breakouts = names.map((name, i) => {
      const members = [...this.assign.entries()].filter(([id, v]) => v === String(i) && this.model.members.has(id)).map(([id]) => id);
      return members.length ? { name, members } : { name };
    });
    this.act('breakouts-plan', { breakouts, automatic: this.auto.checked }, () => 'The plan is saved.');
  }

  openBreakouts() {
    const minutes = Number(this.minutes.value);
    const fields = this.minutes.value && minutes > 0 ? { durationSeconds: Math.round(minutes * 60) } : {};
    this.act('breakouts-open', fields, () => 'The breakouts are open.');
  }

  renderBreakouts() {
    this.renderAssign();
    const view = this.model.breakouts;
    /** @type {any[]} */
    const plan = view?.plan ?? [];
    /** @type {any[]} */
    const open = view?.open ?? [];
    const planned = open.some((b) => b.kind === 'planned');
    const here = this.model.breakout?.id ?? null;
    const planForm = document.getElementById('bo-plan-form');
    if (planForm) planForm.hidden = planned;
    const openForm = document.getElementById('bo-open-form');
    if (openForm) openForm.hidden = planned || plan.length === 0;
    const broadcast = document.getElementById('bo-broadcast-form');
    if (broadcast) broadcast.hidden = open.length === 0;
    /** @param {string[]} ids */
    const names = (ids) => ids.map((id) => this.alias(id)).join(', ') || 'nobody yet';
    const planEl = document.getElementById('bo-plan');
    if (planEl) {
      replace(planEl, plan.length === 0 || planned ? null : h('div', {},
        h('h4', {}, 'Planned'),
        h('ul', { class: 'list', id: 'bo-plan-list' }, ...plan.map((b) => h('li', {}, h('strong', {}, b.name), `: ${names(b.members)}`)))));
    }
    const openEl = document.getElementById('bo-open-now');
    if (openEl) {
      const left = view?.endsAt ? ` Time left: ${clock(view.endsAt - Date.now())}.` : '';
      replace(openEl, open.length === 0 ? null : h('div', {},
        h('h4', {}, 'Open now'), left ? h('p', { class: 'hint', id: 'bo-left' }, left.trim()) : null,
        h('ul', { class: 'list', id: 'bo-open-list' }, ...open.map((b) => h('li', { 'data-breakout': b.id },
          h('strong', {}, b.name), b.kind === 'pull-aside' ? ' (private talk)' : '', `: ${names(b.members)} `,
          b.id === here
            ? h('span', { class: 'badge ok' }, 'You are here')
            : h('button', { type: 'button', class: 'small', 'data-k': `visit-${b.id}`, 'aria-label': `Join ${b.name}`, onclick: () => this.act('breakout-visit', { breakout: b.id }) }, 'Join'),
          h('button', { type: 'button', class: 'small', 'data-k': `close-${b.id}`, 'aria-label': `Close ${b.name}`, onclick: () => this.act('breakout-close', { breakout: b.id }) }, 'Close')))),
        h('div', { class: 'row' },
          here ? h('button', { type: 'button', 'data-k': 'bo-home', onclick: () => this.act('breakout-visit', { breakout: null }) }, 'Back to main room') : null,
          h('button', { type: 'button', 'data-k': 'bo-close-all', onclick: () => this.act('breakouts-close', {}, () => 'Everyone is back in the main room.') }, 'Close all breakouts'))));
    }
  }

  /** Once a second: the breakouts' time left. */
  tick() {
    const el = document.getElementById('bo-left');
    const endsAt = this.model.breakouts?.endsAt;
    if (el && endsAt) el.textContent = `Time left: ${clock(endsAt - Date.now())}.`;
  }

  async end() {
    const ok = await confirmDialog({
      title: 'End the session for everyone?',
      text: 'Everyone, in the room and in the waiting room, will be disconnected. The session cannot be restarted.',
      confirm: 'End for everyone', cancel: 'Keep the session going',
    });
    if (ok) this.act('end', {});
  }
}

/** @param {string} role */
function roleName(role) {
  return ROLES.find(([r]) => r === role)?.[1] ?? role;
}
