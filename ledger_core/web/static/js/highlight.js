// Highlighting of the contract language for the editor: keywords, strings, numbers with
// units, dates and clock times, comments. It follows the language's lexical rules
// (contracts/lexer.py): keywords are case-insensitive, strings are single-quoted with ''
// for a quote, '#' starts a comment.

const KEYWORDS = new Set([
  "contract", "valid", "from", "to", "consumption", "production", "store", "demandresponse",
  "demandrespose", "devices", "parties", "true", "false", "programmed", "sell", "shed", "if",
  "then", "else", "endif", "and", "or", "not", "in", "turn", "on", "off", "device", "surplus",
  "at", "min", "max", "buy", "up", "notify",
]);

const TOKEN = /('(?:[^'\n]|'')*'?)|(#[^\n]*)|(\d{4}\/\d{2}\/\d{2}|\d{1,2}:\d{2}(?::\d{2})?|-?\d+(?:\.\d+)?(?:\s?(?:MXN\/kWh|kWh|Wh|kW|W|%))?)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|==|!=|<>|[<>=,:()-])/g;

function escape(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// The source as highlighted HTML (every piece of the text escaped). `marks` maps a line
// number to "error" or "warning": that line gets a wavy underline of that kind.
export function highlight(source, marks = new Map()) {
  return source
    .split("\n")
    .map((line, index) => {
      let out = "";
      let last = 0;
      for (const match of line.matchAll(TOKEN)) {
        out += escape(line.slice(last, match.index));
        const [text, string, comment, number, word, op] = match;
        let cls = null;
        if (string !== undefined) cls = "tok-str";
        else if (comment !== undefined) cls = "tok-comment";
        else if (number !== undefined) cls = "tok-num";
        else if (word !== undefined && KEYWORDS.has(word.toLowerCase())) cls = "tok-kw";
        else if (op !== undefined) cls = "tok-op";
        out += cls ? `<span class="${cls}">${escape(text)}</span>` : escape(text);
        last = match.index + text.length;
      }
      out += escape(line.slice(last));
      const mark = marks.get(index + 1);
      return mark ? `<span class="line-${mark === "error" ? "error" : "warning"}">${out || " "}</span>` : out;
    })
    .join("\n");
}
