// Operator (a concentrator only): the neighbourhood's load and participants, the price in
// force, sending price signals (an override of a range of intervals, or the schedule's
// prices) and demand-response events, through the node's /operator routes.

import { ApiError, api } from "../api.js";
import { flash, h, ident, replace, table, term } from "../dom.js";
import { clock, energy, pesos, power, price, priceValue, signal } from "../format.js";
import { t } from "../i18n.js";

function tenThousandths(text) {
  const value = Number.parseFloat(String(text).replace(",", "."));
  return Number.isFinite(value) ? Math.round(value * 10000) : null;
}

export async function render(main, ctx) {
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

  main.append(
    h("h1", {}, t("operator.title")),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, t("operator.load")), loadBox),
      h("section", { class: "card" }, h("h2", {}, t("operator.price")), priceBox),
      h("section", { class: "card" }, h("h2", {}, t("operator.send_price")), priceForm),
      h("section", { class: "card" }, h("h2", {}, t("operator.send_dr")), drForm, h("h2", {}, t("operator.events")), eventsBox),
      h("section", { class: "card wide" }, h("h2", {}, t("operator.participants")), peopleBox),
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

  async function loadParticipants() {
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

  fillStarts();
  await Promise.all([loadNeighbourhood(), loadParticipants()]);
  const off = ctx.on(async (event) => {
    if (["price_signal", "dr_event", "interval_report"].includes(event.type)) {
      await loadNeighbourhood();
      if (event.type === "price_signal") flash(priceBox);
    } else if (["participant_registered", "meter_bound", "participant_revoked", "wallet_change"].includes(event.type)) {
      await loadParticipants();
    }
  });
  const timer = setInterval(fillStarts, 60000);
  return () => {
    off();
    clearInterval(timer);
  };
}
