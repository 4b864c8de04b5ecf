// Ledger explorer: the chain's state, the latest blocks and their transactions, the
// validators and the proposer's signature on each block (its vote), peers and sync state.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { clock, short } from "../format.js";
import { t } from "../i18n.js";

const PAGE = 10;
const MAX_TXS = 50;

export async function render(main, ctx) {
  const offset = ctx.summary.utc_offset_minutes;
  const chainBox = h("div", { id: "chain" });
  const blocksBox = h("div", { id: "blocks" });
  const blockBox = h("div", { id: "block" });
  const validatorsBox = h("div", { id: "validators" });
  const peersBox = h("div", { id: "peers" });
  main.append(
    h("h1", {}, t("explorer.title")),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, t("explorer.chain")), chainBox),
      h("section", { class: "card" }, h("h2", {}, t("explorer.validators")), validatorsBox),
      h("section", { class: "card" }, h("h2", {}, t("explorer.peers")), peersBox),
      h("section", { class: "card wide" }, h("h2", {}, t("explorer.blocks")), blocksBox),
      h("section", { class: "card wide" }, blockBox),
    ),
  );

  let top = null;
  let selected = null;

  async function loadChain() {
    const [status, summary] = await Promise.all([api("status"), ctx.refresh()]);
    replace(
      chainBox,
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, t("explorer.chain")), h("dd", { class: "mono" }, status.chain_id),
        h("dt", {}, t("explorer.height")), h("dd", { id: "height" }, String(status.height)),
        h("dt", {}, t("explorer.last_block")), h("dd", {}, clock(status.last_block_time, offset, true)),
        h("dt", {}, t("explorer.behind")), h("dd", {}, `${summary.sync.behind_seconds} s`),
        h("dt", {}, t("explorer.mempool")), h("dd", {}, String(status.mempool)),
        h("dt", {}, t("explorer.app_hash")), h("dd", { class: "mono" }, short(status.app_hash)),
      ),
    );
    replace(
      validatorsBox,
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, t("operator.address")), h("th", { class: "num" }, t("explorer.power")))),
        h("tbody", {}, summary.validators.map((v) => h("tr", {}, h("td", { class: "mono" }, short(v.address)), h("td", { class: "num" }, String(v.power))))),
      ),
    );
    if (summary.peers === null) replace(peersBox, h("p", { class: "muted" }, t("explorer.no_p2p")));
    else if (!summary.peers.length) replace(peersBox, h("p", { class: "muted" }, summary.p2p || "", h("br"), t("explorer.no_peers")));
    else {
      replace(
        peersBox,
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", {}, t("operator.address")), h("th", {}, t("explorer.direction")), h("th", { class: "num" }, t("explorer.rtt")))),
          h(
            "tbody",
            {},
            summary.peers.map((p) =>
              h("tr", {}, h("td", { class: "mono" }, `${short(p.id, 6)}@${p.address}`), h("td", {}, p.direction), h("td", { class: "num" }, p.rtt === null ? t("common.none") : `${(p.rtt * 1000).toFixed(0)} ms`)),
            ),
          ),
        ),
      );
    }
    return status.height;
  }

  async function showBlock(height) {
    selected = height;
    const block = await api(`blocks/${height}`);
    const header = block.header;
    replace(
      blockBox,
      h("h2", {}, t("explorer.block", { height })),
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, t("explorer.time")), h("dd", {}, clock(header.time, offset, true)),
        h("dt", {}, t("explorer.hash")), h("dd", { class: "mono" }, short(block.hash, 16)),
        h("dt", {}, t("explorer.proposer")), h("dd", { class: "mono" }, short(header.proposer)),
        h("dt", {}, t("explorer.signature")), h("dd", { class: "mono" }, short(block.signature, 16)),
      ),
      block.txs.length
        ? h(
            "div",
            { class: "scroll" },
            h(
              "table",
              { id: "block-txs" },
              h("thead", {}, h("tr", {}, h("th", {}, t("explorer.type")), h("th", {}, t("explorer.signer")), h("th", { class: "num" }, t("explorer.nonce")))),
              h("tbody", {}, block.txs.slice(0, MAX_TXS).map((wire) => h("tr", {}, h("td", {}, wire.tx.type), h("td", { class: "mono" }, short(wire.tx.signer)), h("td", { class: "num" }, String(wire.tx.nonce))))),
            ),
            block.txs.length > MAX_TXS ? h("p", { class: "muted small" }, t("explorer.more_txs", { count: block.txs.length - MAX_TXS })) : null,
          )
        : h("p", { class: "muted" }, t("explorer.no_txs")),
    );
    for (const row of blocksBox.querySelectorAll("tr[data-height]")) row.classList.toggle("selected", Number(row.dataset.height) === height);
  }

  async function loadBlocks(from) {
    top = from;
    const heights = [];
    for (let height = from; height > 0 && heights.length < PAGE; height -= 1) heights.push(height);
    const blocks = await Promise.all(heights.map((height) => api(`blocks/${height}`).catch(() => null)));
    const rows = blocks.filter(Boolean).map((block) => {
      const height = block.header.height;
      const row = h(
        "tr",
        { class: `clickable${height === selected ? " selected" : ""}`, dataset: { height }, tabindex: "0" },
        h("td", { class: "num" }, String(height)),
        h("td", {}, clock(block.header.time, offset)),
        h("td", { class: "num" }, String(block.txs.length)),
        h("td", { class: "mono" }, short(block.hash, 8)),
      );
      row.addEventListener("click", () => showBlock(height));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") showBlock(height);
      });
      return row;
    });
    const older = h("button", { type: "button", id: "older", disabled: from - PAGE < 1 }, t("explorer.older"));
    older.addEventListener("click", () => loadBlocks(Math.max(1, from - PAGE)));
    replace(
      blocksBox,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { id: "block-list" },
          h("thead", {}, h("tr", {}, h("th", { class: "num" }, t("explorer.height")), h("th", {}, t("explorer.time")), h("th", { class: "num" }, t("explorer.txs")), h("th", {}, t("explorer.hash")))),
          h("tbody", {}, rows),
        ),
      ),
      h("p", {}, older),
    );
  }

  const height = await loadChain();
  await loadBlocks(height);
  if (height > 0) await showBlock(height);

  let pending = null;
  const off = ctx.on((event, message) => {
    if (event.type !== "new_block" || pending) return;
    // At most one refresh a second, and only while looking at the newest blocks.
    pending = setTimeout(async () => {
      pending = null;
      const latest = await loadChain();
      if (top !== null && top >= latest - PAGE) await loadBlocks(latest);
    }, 1000);
    return message;
  });
  return () => {
    off();
    clearTimeout(pending);
  };
}
