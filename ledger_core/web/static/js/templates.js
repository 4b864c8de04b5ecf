// Contract templates. Dates are filled in from the node's clock (market local time), so a
// template is valid from today for a year -- except the paper's example as printed, kept
// verbatim (September 31st and the "DemandRespose" spelling) to show the checker at work.

function stamp(seconds, offsetMinutes) {
  const iso = new Date((seconds + offsetMinutes * 60) * 1000).toISOString();
  return `${iso.slice(0, 10).replaceAll("-", "/")} 00:00:00`;
}

export function templates(now, offsetMinutes) {
  const from = stamp(now, offsetMinutes);
  const to = stamp(now + 365 * 86400, offsetMinutes);
  const valid = `Valid from ${from} to ${to}`;
  return [
    {
      key: "paper_printed",
      source: [
        "Contract 'prueba'",
        "Valid from 2019/08/01 00:00:00 to 2019/09/31 23:59:59",
        "Consumption true",
        "Production true and sell",
        "Store false",
        "DemandRespose false",
        "IF Price < 3 THEN",
        "TURN ON DEVICE 'Lavadora'",
        "ENDIF",
        "Parties: ISO",
      ],
    },
    {
      key: "paper",
      source: [
        "Contract 'prueba'",
        valid,
        "Consumption true",
        "Production true and sell",
        "Store false",
        "DemandResponse false",
        "IF Price < 3 THEN",
        "  TURN ON DEVICE 'Lavadora'",
        "ENDIF",
        "Parties: ISO",
      ],
    },
    {
      // The paper's demand-response test in its own words: the same contract, line 6 taking
      // part in demand response, so a signal turns the washer off (docs/contract-language.md).
      key: "paper_dr",
      source: [
        "Contract 'prueba dr'",
        valid,
        "Consumption true",
        "Production true and sell",
        "Store false",
        "DemandResponse true shed 'Lavadora'",
        "IF Price < 3 THEN",
        "  TURN ON DEVICE 'Lavadora'",
        "ENDIF",
        "Parties: ISO",
      ],
    },
    {
      key: "washer",
      source: [
        "Contract 'lavadora'",
        valid,
        "DemandResponse true shed 'Lavadora'",
        "IF Price < 3 THEN",
        "  TURN ON DEVICE 'Lavadora'",
        "ELSE",
        "  TURN OFF DEVICE 'Lavadora'",
        "ENDIF",
        "Parties: ISO",
      ],
    },
    {
      key: "sell",
      source: [
        "Contract 'vender excedente'",
        valid,
        "Production true and sell",
        "IF Price >= 2.5 THEN",
        "  SELL SURPLUS AT MIN 2.2 MXN/kWh",
        "ENDIF",
        "Parties: ISO",
      ],
    },
    {
      key: "buy",
      source: [
        "Contract 'comprar'",
        valid,
        "IF Price >= 2 THEN",
        "  BUY UP TO 400 Wh AT MAX 2.2 MXN/kWh",
        "ENDIF",
        "Parties: ISO",
      ],
    },
  ].map((template) => ({ ...template, source: `${template.source.join("\n")}\n` }));
}
