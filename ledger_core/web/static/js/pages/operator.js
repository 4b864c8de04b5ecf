// Operator: on a concentrator, the neighbourhood's load, the price in force, sending price
// signals (an override of a range of intervals, or the schedule's prices) and
// demand-response events (/operator routes); on the operator's node of a P2P network,
// inviting homes (a single-use code, also as a QR code to scan), admitting those held for
// approval, revoking, and every refused code; and the participants, by name.

import { ApiError, api } from "../api.js";
import { flash, h, ident, replace, table, term } from "../dom.js";
import { clock, energy, pesos, power, price, priceValue, signal } from "../format.js";
import { t, word } from "../i18n.js";

const INVITED_ROLES = ["prosumer", "consumer", "supplier", "dso", "retailer", "aggregator"];
const EXPIRIES = [
  ["1d", 86400],
  ["7d", 7 * 86400],
  ["30d", 30 * 86400],
];

function tenThousandths(text) {
  const value = Number.parseFloat(String(text).replace(",", "."));
  return Number.isFinite(value) ? Math.round(value * 10000) : null;
}

function failure(box, error) {
  const where = error instanceof ApiError && error.field ? `${error.field}: ` : "";
  replace(box, h("p", { class: "notice error" }, `${where}${error.message}`));
}

export async function render(main, ctx) {
  const { concentrator, membership } = ctx.features;
  const offset = ctx.summary.utc_offset_minutes;
  const interval = ctx.summary.interval_seconds;
  const loadBox = h("div", { id: "load" });
  const priceBox = h("div", { id: "operator-price" });
  const eventsBox = h("div", { id: "operator-events" });
  const peopleBox = h("div", { id: "participants" });
  const priceResult = h("div", { role: "status", "aria-live": "polite", id: "price-result" });
  const drResult = h("div", { role: "status", "aria-live": "polite", id: "dr-result" });

  const nextStarts = () => {
    const start = Math.floor(ctx.now() / interval) * interval;
    return Array.from({ length: 8 }, (_, i) => start + i * interval);
  };
  const fromSelect = h("select", { id: "price-from" });
  const countInput = h("input", { id: "price-count", type: "number", min: "1", max: "96", value: "1" });
  const importInput = h("input", { id: "price-import", inputmode: "decimal", placeholder: "2.50" });
  const exportInput = h("input", { id: "price-export-input", inputmode: "decimal", placeholder: "1.20" });
  const feeInput = h("input", { id: "price-fee", inputmode: "decimal", placeholder: "0.40" });
  const priceForm = h(
    "form",
    { id: "price-form" },
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "price-from" }, t("operator.interval_from")), fromSelect),
      h("div", {}, h("label", { for: "price-count" }, t("operator.intervals")), countInput),
    ),
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "price-import" }, t("operator.import_mxn")), importInput),
      h("div", {}, h("label", { for: "price-export-input" }, t("operator.export_mxn")), exportInput),
      h("div", {}, h("label", { for: "price-fee" }, t("operator.fee_mxn")), feeInput),
    ),
    h("p", {}, h("button", { type: "submit", class: "primary" }, t("operator.publish"))),
    priceResult,
  );

  const levelSelect = h("select", { id: "dr-level" }, [1, 2, 3].map((level) => h("option", { value: level }, String(level))));
  const startSelect = h("select", { id: "dr-start" });
  const durationInput = h("input", { id: "dr-duration", type: "number", min: "15", max: "1440", step: "15", value: "60" });
  const drForm = h(
    "form",
    { id: "dr-form" },
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "dr-level" }, t("operator.level")), levelSelect),
      h("div", {}, h("label", { for: "dr-start" }, t("operator.start")), startSelect),
      h("div", {}, h("label", { for: "dr-duration" }, t("operator.duration")), durationInput),
    ),
    h("p", {}, h("button", { type: "submit", class: "primary" }, t("operator.issue"))),
    drResult,
  );

  const inviteName = h("input", { id: "invite-name", required: true, maxlength: "32", autocomplete: "off", placeholder: "casa-12" });
  const inviteRole = h("select", { id: "invite-role" }, INVITED_ROLES.map((role) => h("option", { value: role, selected: role === "consumer" }, word("role", role) ?? role)));
  const inviteExpires = h("select", { id: "invite-expires" }, EXPIRIES.map(([key, seconds]) => h("option", { value: seconds, selected: key === "7d" }, t(`operator.expires_${key}`))));
  const inviteApprove = h("select", { id: "invite-approve" }, ["auto", "manual"].map((how) => h("option", { value: how }, t(`operator.approve_${how}`))));
  const invitation = h("div", { id: "invitation", role: "status", "aria-live": "polite" });
  const inviteForm = h(
    "form",
    { id: "invite-form" },
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "invite-name" }, t("operator.invite_name")), inviteName),
      h("div", {}, h("label", { for: "invite-role" }, t("operator.role")), inviteRole),
    ),
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "invite-expires" }, t("operator.invite_expires")), inviteExpires),
      h("div", {}, h("label", { for: "invite-approve" }, t("operator.invite_approve")), inviteApprove),
    ),
    h("p", {}, h("button", { type: "submit", class: "primary" }, t("operator.invite_submit"))),
    invitation,
  );
  const peopleResult = h("div", { id: "participant-result", role: "status", "aria-live": "polite" });
  const refusalsBox = h("div", { id: "refusals" });

  main.append(
    h("h1", {}, t("operator.title")),
    h(
      "div",
      { class: "grid" },
      concentrator ? h("section", { class: "card" }, h("h2", {}, t("operator.load")), loadBox) : null,
      concentrator ? h("section", { class: "card" }, h("h2", {}, t("operator.price")), priceBox) : null,
      concentrator ? h("section", { class: "card" }, h("h2", {}, t("operator.send_price")), priceForm) : null,
      concentrator
        ? h("section", { class: "card" }, h("h2", {}, t("operator.send_dr")), drForm, h("h2", {}, t("operator.events")), eventsBox)
        : null,
      membership ? h("section", { class: "card wide" }, h("h2", {}, t("operator.invite")), inviteForm) : null,
      h("section", { class: "card wide" }, h("h2", {}, t("operator.participants")), peopleBox, peopleResult),
      membership ? h("section", { class: "card wide" }, h("h2", {}, t("operator.refusals")), refusalsBox) : null,
    ),
  );

  function fillStarts() {
    const starts = nextStarts();
    replace(fromSelect, starts.map((s, i) => h("option", { value: s }, `${clock(s, offset)}${i ? "" : ` (${t("common.now")})`}`)));
    replace(startSelect, starts.slice(1).map((s) => h("option", { value: s }, clock(s, offset))));
  }

  async function loadNeighbourhood() {
    const view = await api("operator/neighbourhood");
    const latest = view.load.latest;
    replace(
      loadBox,
      latest
        ? h(
            "dl",
            { class: "kv" },
            h("dt", {}, t("market.interval")), h("dd", {}, clock(latest.interval_start, offset)),
            h("dt", {}, t("operator.meters")), h("dd", {}, String(latest.meters)),
            h("dt", {}, t("overview.imported")), h("dd", {}, energy(latest.import_wh)),
            h("dt", {}, t("overview.exported")), h("dd", {}, energy(latest.export_wh)),
            h("dt", {}, t("operator.net")), h("dd", {}, power(latest.net_import_w)),
          )
        : h("p", { class: "muted" }, t("operator.no_load")),
    );
    const current = view.price;
    const shown = current.on_chain || current.scheduled;
    replace(
      priceBox,
      h("div", { class: "big", id: "operator-price-now" }, priceValue(shown.import_price), h("span", { class: "unit" }, " MXN/kWh")),
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, t("overview.export_price")), h("dd", {}, price(shown.export_price)),
        h("dt", {}, t("overview.network_fee")), h("dd", {}, price(shown.network_fee)),
        h("dt", {}, t("overview.now")), h("dd", {}, `${clock(current.interval_start, offset)} · ${current.on_chain ? t("operator.on_chain") : t("operator.scheduled")}`),
      ),
    );
    replace(
      eventsBox,
      view.dr_events.length
        ? h(
            "ul",
            { id: "operator-dr-list" },
            view.dr_events.map((event) => {
              const cancel = h("button", { type: "button", disabled: event.status === "cancelled" || event.status === "completed" }, t("operator.cancel"));
              cancel.addEventListener("click", async () => {
                cancel.disabled = true;
                try {
                  await api(`operator/dr/${encodeURIComponent(event.event_id)}/cancel`, { method: "POST" });
                } catch (error) {
                  replace(drResult, h("p", { class: "notice error" }, error.message));
                }
                await loadNeighbourhood();
              });
              return h(
                "li",
                { dataset: { event: event.event_id } },
                term("dr", event.status, { badge: true }),
                ` ${signal(event.signal)} · ${clock(event.start, offset)}–${clock(event.end, offset)} `,
                cancel,
              );
            }),
          )
        : h("p", { class: "muted" }, t("overview.no_dr")),
    );
  }

  async function act(path, button) {
    button.disabled = true;
    try {
      const answer = await api(path, { method: "POST", body: {} });
      replace(peopleResult, h("p", { class: "notice ok" }, t("operator.done", { name: answer.name || answer.address })));
    } catch (error) {
      failure(peopleResult, error);
    }
    await loadParticipants();
  }

  function actions(p) {
    const who = encodeURIComponent(p.name || p.address || "");
    const buttons = [];
    if (p.status === "awaiting_approval") {
      buttons.push(h("button", { type: "button", class: "primary", dataset: { admit: p.name }, onclick: (e) => act(`operator/participants/${who}/admit`, e.currentTarget) }, t("operator.admit")));
    }
    if (["active", "invited", "awaiting_approval"].includes(p.status) && p.role !== "operator") {
      buttons.push(h("button", { type: "button", dataset: { revoke: p.name || p.address }, onclick: (e) => act(`operator/participants/${who}/revoke`, e.currentTarget) }, t("operator.revoke")));
    }
    return buttons.length ? buttons : t("common.none");
  }

  async function loadMembers() {
    const { participants } = await api("operator/participants");
    replace(
      peopleBox,
      table({
        id: "participant-list",
        columns: [
          { label: t("operator.name") },
          { label: t("operator.address") },
          { label: t("operator.role") },
          { label: t("operator.meter") },
          { label: t("contracts.state") },
          { label: t("operator.actions") },
        ],
        rows: participants.map((p) => ({
          attributes: { dataset: { name: p.name || "" } },
          cells: [
            p.name ? h("span", { "data-user": true }, p.name) : t("common.none"),
            ident(p.address),
            term("role", p.role),
            p.meter ? ident(p.meter) : t("common.none"),
            term("member", p.status, { badge: true }),
            actions(p),
          ],
        })),
      }),
    );
  }

  async function loadRefusals() {
    const { refusals } = await api("operator/refusals", { query: { limit: 50 } });
    replace(
      refusalsBox,
      refusals.length
        ? table({
            id: "refusal-list",
            columns: [{ label: t("operator.when") }, { label: t("operator.stage") }, { label: t("operator.name") }, { label: t("operator.reason") }, { label: t("operator.message") }],
            rows: refusals.map((r) => ({
              cells: [
                clock(Math.floor(r.at), offset, true),
                term("stage", r.stage),
                r.name ? h("span", { "data-user": true }, r.name) : t("common.none"),
                term("refusal", r.reason, { badge: true }),
                h("span", { class: "small", "data-user": true }, r.message),
              ],
            })),
          })
        : h("p", { class: "muted", id: "no-refusals" }, t("operator.no_refusals")),
    );
  }

  async function showInvitation(entry) {
    const code = h("p", { class: "mono code-text", id: "invitation-code" }, entry.code);
    replace(
      invitation,
      h("p", { class: "notice ok" }, t("operator.invitation_help", { name: entry.name, until: clock(entry.expires, offset, true) })),
      code,
    );
    try {
      const { svg } = await api("web/qr", { method: "POST", body: { text: entry.code } });
      invitation.append(h("img", { id: "invitation-qr", class: "qr", alt: t("operator.qr"), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` }));
    } catch (error) {
      invitation.append(h("p", { class: "notice error" }, error.message));
    }
  }

  inviteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: inviteName.value.trim(),
      role: inviteRole.value,
      expires_in: Number(inviteExpires.value),
      approve: inviteApprove.value,
    };
    try {
      const entry = await api("operator/invitations", { method: "POST", body });
      inviteName.value = "";
      await showInvitation(entry);
    } catch (error) {
      failure(invitation, error);
    }
    await loadParticipants();
  });

  async function loadParticipants() {
    if (membership) {
      await loadMembers();
      return;
    }
    const { participants } = await api("web/participants");
    replace(
      peopleBox,
      table({
        id: "participant-list",
        columns: [
          { label: t("operator.address") },
          { label: t("operator.role") },
          { label: t("contracts.state") },
          { label: t("operator.owner") },
          { label: t("overview.balance"), num: true },
        ],
        rows: participants.map((p) => ({
          cells: [
            ident(p.address),
            term("role", p.role),
            term("account", p.status, { badge: true }),
            p.owner ? ident(p.owner) : t("common.none"),
            p.balance === null ? t("common.none") : pesos(p.balance),
          ],
        })),
      }),
    );
  }

  priceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const from = Number(fromSelect.value);
    const count = Math.max(1, Math.min(96, Number(countInput.value) || 1));
    const body = { from, to: from + count * interval };
    for (const [name, input] of [["import_price", importInput], ["export_price", exportInput], ["network_fee", feeInput]]) {
      if (input.value.trim() === "") continue;
      const value = tenThousandths(input.value);
      if (value === null) {
        replace(priceResult, h("p", { class: "notice error" }, `${name}: ${input.value}`));
        return;
      }
      body[name] = value;
    }
    try {
      const report = await api("operator/prices", { method: "POST", body });
      replace(priceResult, h("p", { class: "notice ok" }, t("operator.published", { count: report.published.length })));
    } catch (error) {
      const where = error instanceof ApiError && error.field ? `${error.field}: ` : "";
      replace(priceResult, h("p", { class: "notice error" }, `${where}${error.message}`));
    }
    await loadNeighbourhood();
  });

  drForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      signal: { name: "SIMPLE", level: Number(levelSelect.value) },
      start: Number(startSelect.value),
      duration: Math.max(1, Number(durationInput.value) || 60) * 60,
    };
    try {
      const issued = await api("operator/dr", { method: "POST", body });
      replace(drResult, h("p", { class: "notice ok" }, t("operator.issued", { event_id: issued.event_id })));
    } catch (error) {
      const where = error instanceof ApiError && error.field ? `${error.field}: ` : "";
      replace(drResult, h("p", { class: "notice error" }, `${where}${error.message}`));
    }
    await loadNeighbourhood();
  });

  if (concentrator) fillStarts();
  await Promise.all([
    concentrator ? loadNeighbourhood() : null,
    loadParticipants(),
    membership ? loadRefusals() : null,
  ]);
  const off = ctx.on(async (event) => {
    if (concentrator && ["price_signal", "dr_event", "interval_report"].includes(event.type)) {
      await loadNeighbourhood();
      if (event.type === "price_signal") flash(priceBox);
    } else if (["participant_registered", "participant_named", "meter_bound", "participant_revoked", "wallet_change"].includes(event.type)) {
      await loadParticipants();
    }
  });
  // Homes ask for admission (and codes are refused) off the ledger: look again now and then.
  const timers = [
    concentrator ? setInterval(fillStarts, 60000) : null,
    membership ? setInterval(() => Promise.all([loadMembers(), loadRefusals()]).catch(() => {}), 5000) : null,
  ];
  return () => {
    off();
    for (const timer of timers) clearInterval(timer);
  };
}
