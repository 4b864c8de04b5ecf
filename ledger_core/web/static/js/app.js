// The web interface's entry: sign-in (standalone), navigation, the live event stream that
// every page listens to, and the pages themselves (hash routes: #/overview, #/contracts, ...).

import { api, setToken, stream, token } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import * as contracts from "./pages/contracts.js";
import * as explorer from "./pages/explorer.js";
import * as market from "./pages/market.js";
import * as operator from "./pages/operator.js";
import * as overview from "./pages/overview.js";

const PAGES = { overview, contracts, market, explorer, operator };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const status = document.getElementById("status");

const listeners = new Set();
let summary = null;
let fetchedAt = 0;
let operatorRoutes = false;
// The operator's features this node serves: the concentrator's (prices, demand response)
// and membership (invitations, admission), each shown only where the node has it.
const features = { concentrator: false, membership: false };
let cleanup = null;
let lastSeq = null;
let height = 0;

// What pages get: the node's summary, its clock, and the live events.
const context = {
  get summary() {
    return summary;
  },
  get operator() {
    return operatorRoutes;
  },
  get features() {
    return features;
  },
  now() {
    return summary.now + (Date.now() / 1000 - fetchedAt);
  },
  async refresh() {
    summary = await api("web/summary");
    fetchedAt = Date.now() / 1000;
    return summary;
  },
  on(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

function setStatus(state) {
  status.className = `status ${state}`;
  status.textContent = state === "live" ? t("status.live", { height }) : t("status.down");
}

function connectEvents() {
  stream("events", {
    query: () => (lastSeq === null ? {} : { after: lastSeq }),
    onState: setStatus,
    onMessage(message) {
      lastSeq = message.seq;
      if (message.height > height) {
        height = message.height;
        setStatus("live");
      }
      for (const listener of [...listeners]) {
        try {
          listener(message.event, message);
        } catch (error) {
          console.error("transactiva: a page failed on an event", error);
        }
      }
    },
  });
}

function drawNav() {
  const names = ["overview", "contracts", "market", "explorer"];
  if (operatorRoutes) names.push("operator");
  replace(nav, names.map((name) => h("a", { href: `#/${name}`, dataset: { page: name } }, t(`nav.${name}`))));
  if (token()) {
    nav.append(
      h("a", {
        href: "#/overview",
        onclick: (event) => {
          event.preventDefault();
          setToken(null);
          window.location.reload();
        },
      }, t("login.out")),
    );
  }
}

async function route() {
  const name = (window.location.hash.replace(/^#\/?/, "") || "overview").split("/")[0];
  const page = PAGES[name] && (name !== "operator" || operatorRoutes) ? name : "overview";
  for (const link of nav.querySelectorAll("a[data-page]")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (cleanup) cleanup();
  cleanup = null;
  replace(main);
  main.dataset.page = page;
  try {
    cleanup = (await PAGES[page].render(main, context)) || null;
  } catch (error) {
    main.append(h("p", { class: "notice error" }, t("error.load", { message: error.message })));
  }
}

function login(wrong = false) {
  replace(nav);
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (event) => {
        event.preventDefault();
        setToken(input.value.trim());
        await start();
      },
    },
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, t("login.help")),
    wrong ? h("p", { class: "notice error" }, t("login.wrong")) : null,
    h("label", { for: "token" }, t("login.token")),
    input,
    h("p", {}, h("button", { class: "primary", type: "submit" }, t("login.submit"))),
  );
  replace(main, form);
  input.focus();
}

async function start() {
  try {
    await context.refresh();
  } catch (error) {
    if (error.status === 401) {
      const hadToken = Boolean(token());
      setToken(null);
      login(hadToken);
      return;
    }
    replace(main, h("p", { class: "notice error" }, t("error.load", { message: error.message })));
    return;
  }
  height = summary.height;
  const spec = await api("openapi.json");
  features.concentrator = "/operator/prices" in spec.paths;
  features.membership = "/operator/invitations" in spec.paths;
  operatorRoutes = features.concentrator || features.membership;
  drawNav();
  connectEvents();
  window.addEventListener("hashchange", route);
  await route();
}

start();
