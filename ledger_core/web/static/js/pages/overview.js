// Overview: live power (the meter's stream), today's energy (committed interval reports),
// the wallet, the price in force and the coming ones, demand response -- kept current by the
// ledger's event stream.

import { api, stream } from "../api.js";
import { dayChart } from "../chart.js";
import { flash, h, replace, table, term } from "../dom.js";
import { clock, clockSeconds, energy, pesos, power, price, priceValue, signal } from "../format.js";
import { lang, t, word } from "../i18n.js";

const UPCOMING = 8;

export async function render(main, ctx) {
  const summary = await ctx.refresh();
  const offset = summary.utc_offset_minutes;
  const interval = summary.interval_seconds;

  const powerCard = h("section", { class: "card", id: "power" }, h("h2", {}, t("overview.power")));
  const todayCard = h("section", { class: "card", id: "today" }, h("h2", {}, t("overview.today")));
  const walletCard = h("section", { class: "card", id: "wallet" }, h("h2", {}, t("overview.wallet")));
  const pricesCard = h("section", { class: "card", id: "prices" }, h("h2", {}, t("overview.prices")));
  const drCard = h("section", { class: "card", id: "dr" }, h("h2", {}, t("overview.dr")));
  const forecastCard = h("section", { class: "card wide", id: "forecast" }, h("h2", {}, t("overview.forecast")));
  main.append(
    h("h1", {}, t("overview.title")),
    h("div", { class: "grid" }, powerCard, pricesCard, walletCard, todayCard, drCard),
  );
  if (summary.roles.meter) main.append(forecastCard);

  const powerBody = h("div", {}, h("p", { class: "muted" }, summary.roles.meter ? t("overview.no_reading") : t("overview.no_meter")));
  powerCard.append(powerBody);
  const todayBody = h("div");
  todayCard.append(todayBody);
  const walletBody = h("div");
  walletCard.append(walletBody);
  const pricesBody = h("div");
  pricesCard.append(pricesBody);
  const drBody = h("div");
  drCard.append(drBody);

  function drawPower(snapshot) {
    const watts = snapshot.power;
    const importing = watts === null ? null : Math.max(watts, 0);
    const exporting = watts === null ? null : Math.max(-watts, 0);
    replace(
      powerBody,
      h(
        "div",
        { class: "flow" },
        h("div", {}, h("div", { class: "value import", id: "power-import" }, power(importing)), h("div", { class: "muted small" }, t("overview.import"))),
        h("div", {}, h("div", { class: "value export", id: "power-export" }, power(exporting)), h("div", { class: "muted small" }, t("overview.export"))),
        h("div", {}, h("div", { class: "value production" }, t("overview.not_measured")), h("div", { class: "muted small" }, t("overview.production"))),
      ),
      h(
        "p",
        { class: "muted small", id: "reading-at" },
        t("overview.reading_at", { source: word("source", snapshot.source) ?? snapshot.source, time: clockSeconds(Date.parse(snapshot.time) / 1000, offset) }),
      ),
    );
  }

  function drawSummary(current) {
    const today = current.today;
    replace(
      todayBody,
      today
        ? h(
            "dl",
            { class: "kv" },
            h("dt", {}, t("overview.imported")), h("dd", { id: "today-import" }, energy(today.import_wh)),
            h("dt", {}, t("overview.exported")), h("dd", { id: "today-export" }, energy(today.export_wh)),
            h("dt", {}, t("overview.reports")), h("dd", {}, String(today.reports)),
          )
        : h("p", { class: "muted" }, t("overview.no_meter")),
    );
    replace(
      walletBody,
      h("div", { class: "big", id: "balance" }, pesos(current.wallet.balance)),
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, t("overview.held")), h("dd", {}, pesos(current.wallet.held)),
        h("dt", {}, t("overview.debt")), h("dd", {}, pesos(current.wallet.debt)),
      ),
    );
    const events = current.dr_events;
    replace(
      drBody,
      events.length
        ? h(
            "ul",
            { id: "dr-events" },
            events.map((event) =>
              h(
                "li",
                {},
                term("dr", event.status, { badge: true }),
                " ",
                t("overview.dr_item", { describe: signal(event.signal), from: clock(event.start, offset), to: clock(event.end, offset) }),
                // Ramping up or recovering says more than "in force".
                event.status === "active" && event.phase !== "active" ? [" · ", term("phase", event.phase)] : null,
              ),
            ),
          )
        : h("p", { class: "muted" }, t("overview.no_dr")),
    );
  }

  async function loadPrices() {
    const start = Math.floor(ctx.now() / interval) * interval;
    const { prices } = await api("signals/prices", {
      query: { from: start - 96 * interval, to: start + (UPCOMING + 1) * interval },
    });
    const inForce = prices.filter((p) => p.interval_start <= start).pop();
    const coming = prices.filter((p) => p.interval_start > start);
    replace(
      pricesBody,
      inForce
        ? h(
            "div",
            { id: "price-now-box" },
            h("div", { class: "big", id: "price-now" }, priceValue(inForce.import_price), h("span", { class: "unit" }, " MXN/kWh")),
            h(
              "dl",
              { class: "kv" },
              h("dt", {}, t("overview.export_price")), h("dd", { id: "price-export" }, price(inForce.export_price)),
              h("dt", {}, t("overview.network_fee")), h("dd", {}, price(inForce.network_fee)),
              h("dt", {}, t("overview.now")), h("dd", {}, clock(inForce.interval_start, offset, true)),
            ),
          )
        : h("p", { class: "muted", id: "price-now" }, t("overview.no_price")),
      h("h2", {}, t("overview.upcoming")),
      table({
        id: "price-upcoming",
        stack: false,
        columns: [
          { label: t("overview.interval") },
          { label: `${t("overview.import_price")} (MXN/kWh)`, num: true },
          { label: `${t("overview.export_price")} (MXN/kWh)`, num: true },
        ],
        rows: coming.map((p) => ({
          cells: [clock(p.interval_start, offset), priceValue(p.import_price), priceValue(p.export_price)],
        })),
      }),
    );
  }

  // Forecast (next 24 h, with its 10-90 % band) and advice, from the node's analytics.
  async function loadForecast() {
    const body = h("div");
    try {
      // The summary says whether a model is fitted yet (asking for a forecast before
      // would only get a 503).
      const state = await api("local/analytics/summary");
      if (!state.ready) {
        body.append(h("p", { class: "muted", id: "forecast-state" }, t("overview.forecast_wait")));
        replace(forecastCard, h("h2", {}, t("overview.forecast")), body);
        return;
      }
      const forecast = await api("local/analytics/forecast", { query: { hours: 24 } });
      const rows = forecast.series;
      const step = forecast.interval_seconds;
      const kwh = (wh) => (wh * 3600) / step / 1000;
      body.append(
        dayChart({
          title: t("overview.forecast"),
          width: forecastCard.querySelector("h2").clientWidth,
          from: rows[0].start,
          to: rows[rows.length - 1].start + step,
          step,
          lines: [
            { cls: "forecast-use", points: rows.map((r) => [r.start, kwh(r.consumption_wh)]) },
            { cls: "forecast-band", points: rows.map((r) => [r.start, kwh(r.consumption_p90)]) },
            { cls: "forecast-pv", points: rows.map((r) => [r.start, kwh(r.production_wh)]) },
          ],
          xLabel: (x) => clock(x, offset),
          yLabel: (v) => `${v.toFixed(1)} kW`,
        }),
        h("p", { class: "muted small" }, t("overview.forecast_legend")),
      );
      const advice = await api("local/analytics/advice");
      if (advice.items.length) {
        body.append(
          h("h3", {}, t("overview.advice")),
          h("ol", { id: "advice" }, ...advice.items.slice(0, 5).map((item) =>
            h("li", {}, h("strong", {}, item.title[lang] ?? item.title.en), " ", pesos(item.centavos)),
          )),
        );
      }
    } catch (error) {
      const waiting = error.status === 503;
      body.append(h("p", { class: "muted", id: "forecast-state" }, waiting ? t("overview.forecast_wait") : t("overview.forecast_none")));
    }
    replace(forecastCard, h("h2", {}, t("overview.forecast")), body);
  }

  drawSummary(summary);
  await loadPrices();
  if (summary.roles.meter) await loadForecast();

  const meter = summary.roles.meter
    ? stream("local/meter/stream", { onMessage: drawPower })
    : null;
  const off = ctx.on(async (event) => {
    if (event.type === "price_signal") {
      await loadPrices();
      flash(pricesCard);
    } else if (["dr_event", "wallet_change", "interval_report", "debt_change", "settlement"].includes(event.type)) {
      drawSummary(await ctx.refresh());
      if (event.type === "dr_event") flash(drCard);
    }
  });
  // The price in force changes at interval boundaries without an event.
  const timer = setInterval(loadPrices, 60000);
  return () => {
    off();
    clearInterval(timer);
    if (meter) meter.close();
  };
}
