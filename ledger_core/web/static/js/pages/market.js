// Market: each 15-minute interval's double auction over a day -- clearing price and volume
// charted against the supplier's import price -- and this participant's trades.

import { api } from "../api.js";
import { dayChart } from "../chart.js";
import { h, replace, table, term } from "../dom.js";
import { clock, energy, pesos, priceValue } from "../format.js";
import { t } from "../i18n.js";

const DAY = 86400;

export async function render(main, ctx) {
  const summary = ctx.summary;
  const offset = summary.utc_offset_minutes;
  const step = summary.interval_seconds;
  let back = 0;

  const dayButtons = [0, 1].map((days) =>
    h("button", { type: "button", dataset: { back: days } }, t(days ? "market.yesterday" : "market.today")),
  );
  const chartBox = h("div", { id: "market-chart" });
  const intervalsBox = h("div", { id: "market-intervals" });
  const tradesBox = h("div", { id: "market-trades" });
  main.append(
    h("h1", {}, t("market.title")),
    h("div", { class: "row" }, dayButtons),
    h(
      "div",
      { class: "grid pairs" },
      h(
        "section",
        { class: "card wide" },
        h("h2", {}, t("market.chart")),
        h(
          "div",
          { class: "legend" },
          h("span", {}, h("i", { class: "l-price" }), t("market.clearing")),
          h("span", {}, h("i", { class: "l-import" }), t("market.import")),
          h("span", {}, h("i", { class: "l-volume" }), t("market.volume")),
        ),
        chartBox,
      ),
      h("section", { class: "card" }, h("h2", {}, t("market.trades")), tradesBox),
      h("section", { class: "card" }, h("h2", {}, t("market.intervals")), intervalsBox),
    ),
  );

  async function load() {
    for (const button of dayButtons) button.classList.toggle("primary", Number(button.dataset.back) === back);
    const from = ctx.summary.day_start - back * DAY;
    const to = from + DAY;
    const query = { from, to, limit: 200 };
    const [{ intervals }, { prices }, { trades }] = await Promise.all([
      api("market/intervals", { query }),
      api("signals/prices", { query }),
      api(`market/trades/${summary.participant}`, { query }),
    ]);
    // Cleared intervals keep their price and volume when they are settled.
    const cleared = intervals.filter((i) => i.price !== undefined && i.price !== null);
    replace(
      chartBox,
      dayChart({
        title: t("market.chart"),
        width: chartBox.clientWidth,
        from,
        to,
        step,
        lines: [
          { cls: "import-price", points: prices.map((p) => [p.interval_start, p.import_price / 10000]) },
          { cls: "price", dots: true, points: cleared.map((i) => [i.interval_start, i.price / 10000]) },
        ],
        bars: cleared.map((i) => [i.interval_start, i.volume_wh || 0]),
        xLabel: (s) => clock(s, offset),
        yLabel: (v) => v.toFixed(2),
        barLabel: (wh) => (wh >= 1000 ? `${(wh / 1000).toFixed(1)}k` : wh.toFixed(0)),
      }),
    );
    replace(
      intervalsBox,
      intervals.length
        ? table({
            id: "interval-list",
            columns: [
              { label: t("market.interval") },
              { label: t("market.status") },
              { label: t("market.price_unit"), num: true },
              { label: t("market.volume"), num: true },
              { label: t("market.bids_offers"), num: true },
            ],
            rows: [...intervals].reverse().map((i) => ({
              cells: [
                clock(i.interval_start, offset),
                term("interval", i.status, { badge: true }),
                priceValue(i.price ?? null),
                energy(i.volume_wh ?? null),
                `${i.bids ?? 0} / ${i.offers ?? 0}`,
              ],
            })),
          })
        : h("p", { class: "muted" }, t("market.no_intervals")),
    );
    replace(
      tradesBox,
      trades.length
        ? table({
            id: "trades",
            columns: [
              { label: t("market.interval") },
              { label: t("market.side") },
              { label: t("market.energy"), num: true },
              { label: t("market.price_unit"), num: true },
              { label: t("market.amount"), num: true },
            ],
            rows: trades.map((trade) => ({
              cells: [
                clock(trade.interval_start, offset),
                term("side", trade.side),
                energy(trade.energy_wh),
                priceValue(trade.price),
                pesos(trade.payment),
              ],
            })),
          })
        : h("p", { class: "muted" }, t("market.no_trades")),
    );
  }

  for (const button of dayButtons) {
    button.addEventListener("click", async () => {
      back = Number(button.dataset.back);
      await load();
    });
  }
  await load();
  const off = ctx.on(async (event) => {
    if (back === 0 && ["interval_cleared", "trade", "price_signal"].includes(event.type)) await load();
  });
  return off;
}
