// Units of the ledger, for people: centavos, Wh, 10^-4 MXN/kWh, Unix seconds in the
// market's local time (UTC plus the genesis' utc_offset_minutes).

import { locale, t } from "./i18n.js";

const money = new Intl.NumberFormat(locale, { style: "currency", currency: "MXN" });
const decimals = (min, max) => new Intl.NumberFormat(locale, { minimumFractionDigits: min, maximumFractionDigits: max });
const two = decimals(2, 2);
const price4 = decimals(2, 4);
const whole = decimals(0, 0);

export function pesos(centavos) {
  return centavos === null || centavos === undefined ? t("common.none") : money.format(centavos / 100);
}

export function priceValue(tenThousandths) {
  if (tenThousandths === null || tenThousandths === undefined) return t("common.none");
  return price4.format(tenThousandths / 10000);
}

export function price(tenThousandths) {
  if (tenThousandths === null || tenThousandths === undefined) return t("common.none");
  return `${priceValue(tenThousandths)} MXN/kWh`;
}

export function energy(wh) {
  if (wh === null || wh === undefined) return t("common.none");
  return Math.abs(wh) >= 1000 ? `${two.format(wh / 1000)} kWh` : `${whole.format(wh)} Wh`;
}

export function power(watts) {
  if (watts === null || watts === undefined) return t("common.none");
  return Math.abs(watts) >= 1000 ? `${two.format(watts / 1000)} kW` : `${whole.format(watts)} W`;
}

// The market's local clock: "HH:MM" (and the date when `withDate`).
export function clock(seconds, offsetMinutes, withDate = false) {
  if (seconds === null || seconds === undefined) return t("common.none");
  const iso = new Date((seconds + offsetMinutes * 60) * 1000).toISOString();
  return withDate ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

export function short(text, keep = 10) {
  if (!text) return t("common.none");
  return text.length > keep * 2 ? `${text.slice(0, keep)}…${text.slice(-4)}` : text;
}

// "HH:MM:SS" on the market's local clock.
export function clockSeconds(seconds, offsetMinutes) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return t("common.none");
  return new Date((seconds + offsetMinutes * 60) * 1000).toISOString().slice(11, 19);
}

// A demand-response signal for people (the ledger's `signal` object).
export function signal(value) {
  if (value.name === "SIMPLE") return t("dr.simple", { level: value.level });
  if (value.name === "ELECTRICITY_PRICE") return t("dr.price", { price: price(value.price) });
  if (value.setpoint_w !== undefined && value.setpoint_w !== null) return t("dr.setpoint", { power: power(value.setpoint_w) });
  return t("dr.delta", { power: `${value.delta_w > 0 ? "+" : ""}${power(value.delta_w)}` });
}
