// Contracts: what awaits your signature (a neighbour's proposal naming this home), signed
// with one button; an editor that checks as you type (POST /contracts/check, the same
// checker the ledger runs) and marks each problem at its line and column; templates;
// signing and submitting the canonical text with the node's participant key; the receipt;
// and the list of your contracts with the actions they took.

import { ApiError, api } from "../api.js";
import { h, replace, table, term } from "../dom.js";
import { clock, short } from "../format.js";
import { t } from "../i18n.js";
import { highlight } from "../highlight.js";
import { templates } from "../templates.js";

const CHECK_DELAY_MS = 250;

// Why an action was taken: "line 7: IF Price < 3 THEN" (or "line 7: ELSE of IF ..."), the
// clause in the contract's own language.
function reason(text) {
  const found = /^line (\d+): (ELSE of )?(.*)$/s.exec(text || "");
  if (!found) return h("code", {}, text || "");
  return [t("contracts.line", { line: found[1] }), " ", found[2] ? `${t("contracts.else_of")} ` : "", h("code", {}, found[3])];
}

// What an action did: the verb in the reader's language, the device or message as written.
function what(action) {
  return [
    term("action", action.action),
    action.device ? [" ", h("span", { class: "device", "data-user": true }, `'${action.device}'`)] : null,
    action.text ? [" ", h("span", { "data-user": true }, `“${action.text}”`)] : null,
  ];
}

export async function render(main, ctx) {
  const summary = ctx.summary;
  const offset = summary.utc_offset_minutes;
  const choices = templates(Math.floor(ctx.now()), offset);

  const textarea = h("textarea", {
    id: "contract-source",
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    "aria-label": t("contracts.editor"),
    wrap: "off",
    "data-scroll": true, // long lines scroll inside the editor
  });
  const code = h("code");
  const pre = h("pre", { "aria-hidden": "true", "data-scroll": true }, code);
  const gutter = h("div", { class: "gutter mono", "aria-hidden": "true", id: "gutter" });
  const editor = h("div", { class: "editor" }, gutter, h("div", { class: "code" }, pre, textarea));
  const verdict = h("p", { id: "verdict", role: "status", "aria-live": "polite", class: "muted" });
  const diagnostics = h("ul", { class: "diagnostics", id: "diagnostics" });
  const formatButton = h("button", { type: "button", id: "format", disabled: true }, t("contracts.format"));
  const submitButton = h("button", { type: "button", class: "primary", id: "submit", disabled: true }, t("contracts.submit"));
  const outcome = h("div", { id: "outcome" });
  const picker = h(
    "select",
    { id: "template" },
    h("option", { value: "" }, t("contracts.template_pick")),
    choices.map((choice) => h("option", { value: choice.key }, t(`contracts.tpl.${choice.key}`))),
  );
  const listBody = h("div", { id: "contract-list" });
  const detail = h("div", { id: "contract-detail" });
  const awaitingBody = h("div", { id: "awaiting" });
  const awaitingResult = h("div", { id: "awaiting-result", role: "status", "aria-live": "polite" });

  main.append(
    h("h1", {}, t("contracts.title")),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card wide" }, h("h2", {}, t("contracts.awaiting")), awaitingBody, awaitingResult),
      h(
        "section",
        { class: "card wide" },
        h("h2", {}, t("contracts.editor")),
        h("label", { for: "template" }, t("contracts.template")),
        picker,
        editor,
        verdict,
        diagnostics,
        h("div", { class: "row" }, formatButton, submitButton),
        outcome,
      ),
      h("section", { class: "card wide" }, h("h2", {}, t("contracts.mine")), listBody, detail),
    ),
  );

  let lastResult = null;
  let timer = null;
  let generation = 0;

  function drawSource(bad = new Map()) {
    const source = textarea.value;
    code.innerHTML = `${highlight(source, bad)}\n`;
    const lines = source.split("\n").length;
    replace(
      gutter,
      Array.from({ length: lines }, (_, i) => {
        const severity = bad.get(i + 1);
        return h("span", { class: severity || null, dataset: { line: i + 1 } }, String(i + 1));
      }),
    );
  }

  function drawDiagnostics(result) {
    const bad = new Map();
    for (const d of result.diagnostics) {
      if (d.severity === "error" || !bad.has(d.line)) bad.set(d.line, d.severity);
    }
    drawSource(bad);
    replace(
      diagnostics,
      result.diagnostics.map((d) =>
        h(
          "li",
          { class: `diag-${d.severity}`, dataset: { line: d.line, column: d.column, severity: d.severity } },
          h("span", { class: "where" }, t("contracts.where", { line: d.line, column: d.column })),
          d.message,
          d.expected ? `; ${t("contracts.expected", { expected: d.expected })}` : "",
          d.hint ? ` (${d.hint})` : "",
        ),
      ),
    );
    const errors = result.diagnostics.filter((d) => d.severity === "error").length;
    verdict.className = result.ok ? "notice ok" : "notice error";
    verdict.textContent = result.ok
      ? t("contracts.valid", { short_id: result.short_id, name: result.name, parties: result.parties.join(", ") })
      : t("contracts.invalid", { count: errors });
    formatButton.disabled = !result.ok;
    submitButton.disabled = !result.ok;
  }

  async function check() {
    const mine = ++generation;
    const source = textarea.value;
    if (!source.trim()) {
      lastResult = null;
      replace(diagnostics);
      verdict.textContent = "";
      drawSource();
      submitButton.disabled = formatButton.disabled = true;
      return;
    }
    verdict.className = "muted";
    verdict.textContent = t("contracts.checking");
    try {
      const result = await api("contracts/check", { method: "POST", body: { source } });
      if (mine !== generation) return;
      lastResult = result;
      drawDiagnostics(result);
    } catch (error) {
      if (mine !== generation) return;
      verdict.className = "notice error";
      verdict.textContent = t("error.load", { message: error.message });
    }
  }

  function changed() {
    drawSource();
    submitButton.disabled = formatButton.disabled = true;
    clearTimeout(timer);
    timer = setTimeout(check, CHECK_DELAY_MS);
  }

  textarea.addEventListener("input", changed);
  textarea.addEventListener("scroll", () => {
    pre.scrollTop = textarea.scrollTop;
    pre.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  });
  picker.addEventListener("change", () => {
    const choice = choices.find((c) => c.key === picker.value);
    if (!choice) return;
    textarea.value = choice.source;
    changed();
  });
  formatButton.addEventListener("click", () => {
    if (lastResult && lastResult.ok) {
      textarea.value = lastResult.canonical;
      changed();
    }
  });
  submitButton.addEventListener("click", async () => {
    if (!lastResult || !lastResult.ok) return;
    submitButton.disabled = true;
    replace(outcome, h("p", { class: "muted" }, t("contracts.submitting")));
    try {
      const committed = await api("local/contract_propose", {
        method: "POST",
        query: { wait: "true" },
        body: { source: lastResult.canonical },
      });
      if (committed.status !== "committed") {
        replace(outcome, h("p", { class: "notice" }, t("contracts.pending", { missing: "…" })));
        return;
      }
      if (committed.code !== "ok") {
        replace(outcome, h("p", { class: "notice error" }, t("contracts.refused", { message: committed.message })));
        return;
      }
      const proposed = committed.events.find((e) => e.type === "contract_proposed");
      const record = await api(`contracts/${proposed.contract_id}`);
      showRecord(record);
      await loadList(proposed.contract_id);
    } catch (error) {
      const message = error instanceof ApiError ? error.message : String(error);
      replace(outcome, h("p", { class: "notice error" }, t("contracts.refused", { message })));
    } finally {
      submitButton.disabled = !(lastResult && lastResult.ok);
    }
  });

  // A party as people read it: its name on the ledger, else its shortened address.
  function party(record, address) {
    const name = record.names && record.names[address];
    return name ? h("span", { class: "party", "data-user": true, title: address }, name) : h("span", { class: "mono ident", title: address }, short(address));
  }

  function parties(record, addresses) {
    return addresses.flatMap((address, i) => (i ? [", ", party(record, address)] : [party(record, address)]));
  }

  async function sign(record, button) {
    button.disabled = true;
    replace(awaitingResult, h("p", { class: "muted" }, t("contracts.signing")));
    try {
      const answer = await api(`local/contracts/${record.id}/sign`, { method: "POST", body: {} });
      const signed = answer.contract;
      replace(
        awaitingResult,
        signed.receipt
          ? [h("h3", {}, t("contracts.receipt")), h("p", { class: "notice ok receipt mono", id: "awaiting-receipt" }, signed.receipt)]
          : h("p", { class: "notice", id: "awaiting-pending" }, t("contracts.signed_pending", { missing: signed.missing.map((a) => (signed.names[a] || short(a))).join(", ") })),
      );
    } catch (error) {
      const message = error instanceof ApiError ? error.message : String(error);
      replace(awaitingResult, h("p", { class: "notice error" }, t("contracts.refused", { message })));
      button.disabled = false;
    }
    await Promise.all([loadAwaiting(), loadList(record.id)]);
  }

  async function loadAwaiting() {
    const { contracts } = await api("local/contracts/awaiting");
    if (!contracts.length) {
      replace(awaitingBody, h("p", { class: "muted", id: "awaiting-none" }, t("contracts.awaiting_none")));
      return;
    }
    replace(
      awaitingBody,
      h(
        "ul",
        { class: "awaiting", id: "awaiting-list" },
        contracts.map((record) => {
          const button = h("button", { type: "button", class: "primary", dataset: { sign: record.id } }, t("contracts.sign"));
          button.addEventListener("click", () => sign(record, button));
          return h(
            "li",
            { dataset: { id: record.id } },
            h("p", {}, h("strong", { "data-user": true }, record.name), " ", h("span", { class: "mono ident" }, record.short_id)),
            h("p", { class: "small" }, t("contracts.proposed_by"), " ", party(record, record.proposer), " · ", t("contracts.parties"), " ", parties(record, record.signers)),
            h("details", {}, h("summary", {}, t("contracts.read")), h("pre", { class: "source", "data-scroll": true }, record.source)),
            h("p", {}, button),
          );
        }),
      ),
    );
  }

  function showRecord(record) {
    if (record.receipt) {
      replace(
        outcome,
        h("h2", {}, t("contracts.receipt")),
        h("p", { class: "notice ok receipt mono", id: "receipt" }, record.receipt),
      );
    } else {
      const missing = record.signers.filter((s) => !record.signed.includes(s)).map((s) => (record.names && record.names[s]) || short(s));
      replace(outcome, h("p", { class: "notice", id: "receipt-pending" }, t("contracts.pending", { missing: missing.join(", ") })));
    }
  }

  async function showActions(contract) {
    const { actions } = await api("local/actions", { query: { contract_id: contract.id, limit: 50 } });
    replace(
      detail,
      h("h2", {}, `${t("contracts.actions")} · `, h("span", { "data-user": true }, contract.name)),
      contract.receipt ? h("p", { class: "receipt mono small" }, contract.receipt) : null,
      actions.length
        ? table({
            id: "actions",
            columns: ["contracts.when", "contracts.action", "contracts.reason", "contracts.result"].map((k) => ({ label: t(k) })),
            rows: actions.map((a) => ({
              cells: [
                clock(a.time, offset, true),
                what(a),
                reason(a.reason),
                [
                  term("result", a.result || "waiting", { badge: true }),
                  a.detail ? h("span", { class: "detail small muted", "data-user": true }, a.detail) : null,
                ],
              ],
            })),
          })
        : h("p", { class: "muted" }, t("contracts.no_actions")),
    );
  }

  async function loadList(selected = null) {
    const { contracts } = await api("web/contracts");
    if (!contracts.length) {
      replace(listBody, h("p", { class: "muted" }, t("contracts.none")));
      return;
    }
    const open = (row, contract) => {
      for (const other of listBody.querySelectorAll("tr.selected")) other.classList.remove("selected");
      row.classList.add("selected");
      showActions(contract);
    };
    replace(
      listBody,
      table({
        id: "contracts",
        columns: [{ label: t("contracts.name") }, { label: t("contracts.id") }, { label: t("contracts.state") }],
        rows: contracts.map((c) => ({
          attributes: {
            class: `clickable${c.id === selected ? " selected" : ""}`,
            dataset: { id: c.id },
            tabindex: "0",
            onclick: (event) => open(event.currentTarget, c),
            onkeydown: (event) => {
              if (event.key === "Enter") open(event.currentTarget, c);
            },
          },
          cells: [
            h("span", { "data-user": true }, c.name),
            h("span", { class: "mono ident", title: c.id }, c.short_id || short(c.id)),
            term("contract", c.status, { badge: true }),
          ],
        })),
      }),
    );
    const chosen = contracts.find((c) => c.id === selected);
    if (chosen) await showActions(chosen);
  }

  drawSource();
  await Promise.all([loadList(), loadAwaiting()]);
  const off = ctx.on(async (event) => {
    if (event.type && event.type.startsWith("contract_")) await Promise.all([loadList(), loadAwaiting()]);
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}
