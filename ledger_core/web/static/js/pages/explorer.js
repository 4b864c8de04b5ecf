// Ledger explorer: the chain's state, the latest blocks and their transactions, the
// validators and the proposer's signature on each block (its vote), peers and sync state.
// #/explorer/HEIGHT opens that block; choosing a block puts its height in the address.

import { api } from "../api.js";
import { h, ident, replace, table, term } from "../dom.js";
import { clock } from "../format.js";
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
        h("dt", {}, t("explorer.chain")), h("dd", {}, ident(status.chain_id, { full: true })),
        h("dt", {}, t("explorer.height")), h("dd", { id: "height" }, String(status.height)),
        h("dt", {}, t("explorer.last_block")), h("dd", {}, clock(status.last_block_time, offset, true)),
        h("dt", {}, t("explorer.behind")), h("dd", {}, `${summary.sync.behind_seconds} s`),
        h("dt", {}, t("explorer.mempool")), h("dd", {}, String(status.mempool)),
        h("dt", {}, t("explorer.app_hash")), h("dd", {}, ident(status.app_hash)),
      ),
    );
    replace(
      validatorsBox,
      table({
        id: "validator-list",
        stack: false,
        columns: [{ label: t("operator.address") }, { label: t("explorer.power"), num: true }],
        rows: summary.validators.map((v) => ({ cells: [ident(v.address), String(v.power)] })),
      }),
    );
    if (summary.peers === null) replace(peersBox, h("p", { class: "muted" }, t("explorer.no_p2p")));
    else if (!summary.peers.length) replace(peersBox, h("p", { class: "muted" }, summary.p2p || "", h("br"), t("explorer.no_peers")));
    else {
      replace(
        peersBox,
        table({
          id: "peer-list",
          columns: [{ label: t("operator.address") }, { label: t("explorer.direction") }, { label: t("explorer.rtt"), num: true }],
          rows: summary.peers.map((p) => ({
            cells: [
              [ident(p.id, { keep: 6 }), h("span", { class: "mono" }, `@${p.address}`)],
              term("peer", p.direction),
              p.rtt === null ? t("common.none") : `${(p.rtt * 1000).toFixed(0)} ms`,
            ],
          })),
        }),
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
        h("dt", {}, t("explorer.hash")), h("dd", {}, ident(block.hash, { full: true })),
        h("dt", {}, t("explorer.proposer")), h("dd", {}, ident(header.proposer, { full: true })),
        h("dt", {}, t("explorer.signature")), h("dd", {}, ident(block.signature, { full: true })),
      ),
      block.txs.length
        ? [
            table({
              id: "block-txs",
              columns: [{ label: t("explorer.type") }, { label: t("explorer.signer") }, { label: t("explorer.nonce"), num: true }],
              rows: block.txs.slice(0, MAX_TXS).map((wire) => ({
                cells: [term("tx", wire.tx.type), ident(wire.tx.signer), String(wire.tx.nonce)],
              })),
            }),
            block.txs.length > MAX_TXS ? h("p", { class: "muted small" }, t("explorer.more_txs", { count: block.txs.length - MAX_TXS })) : null,
          ]
        : h("p", { class: "muted" }, t("explorer.no_txs")),
    );
    for (const row of blocksBox.querySelectorAll("tr[data-height]")) row.classList.toggle("selected", Number(row.dataset.height) === height);
  }

  // A block the reader chose: shown, and its height kept in the address.
  async function choose(height) {
    window.history.replaceState(null, "", `#/explorer/${height}`);
    await showBlock(height);
  }

  async function loadBlocks(from) {
    top = from;
    const heights = [];
    for (let height = from; height > 0 && heights.length < PAGE; height -= 1) heights.push(height);
    const blocks = await Promise.all(heights.map((height) => api(`blocks/${height}`).catch(() => null)));
    const rows = blocks.filter(Boolean).map((block) => {
      const height = block.header.height;
      return {
        attributes: {
          class: `clickable${height === selected ? " selected" : ""}`,
          dataset: { height },
          tabindex: "0",
          onclick: () => choose(height),
          onkeydown: (event) => {
            if (event.key === "Enter") choose(height);
          },
        },
        cells: [String(height), clock(block.header.time, offset), String(block.txs.length), ident(block.hash, { keep: 8 })],
      };
    });
    const older = h("button", { type: "button", id: "older", disabled: from - PAGE < 1 }, t("explorer.older"));
    older.addEventListener("click", () => loadBlocks(Math.max(1, from - PAGE)));
    replace(
      blocksBox,
      table({
        id: "block-list",
        columns: [
          { label: t("explorer.height"), num: true },
          { label: t("explorer.time") },
          { label: t("explorer.txs"), num: true },
          { label: t("explorer.hash") },
        ],
        rows,
      }),
      h("p", {}, older),
    );
  }

  const height = await loadChain();
  const asked = Number(window.location.hash.split("/")[2]);
  const chosen = Number.isInteger(asked) && asked >= 1 && asked <= height ? asked : height;
  await loadBlocks(Math.min(height, chosen + PAGE / 2));
  if (chosen > 0) await showBlock(chosen);

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
