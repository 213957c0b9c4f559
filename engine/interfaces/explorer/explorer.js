// tokensweep explorer: the calculator's panels over a cube embedded in this page.
// Data: every variable as float64 (little-endian, C order over its dims), gzip + base64;
// name labels of reduced cubes as JSON lists. Plotly draws; this script only indexes.
"use strict";

const P = JSON.parse(document.getElementById("payload").textContent);
const DIMS = Object.fromEntries(P.dims.map((d) => [d.name, d]));
const VARS = Object.fromEntries(P.vars.map((v) => [v.name, v]));
const cur = Object.fromEntries(P.dims.map((d) => [d.name, d.start]));
let DATA = null;

async function decode(b64) {
  let bytes;
  try {
    bytes = await (await fetch("data:application/octet-stream;base64," + b64)).arrayBuffer();
  } catch (err) {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Float64Array(await new Response(stream).arrayBuffer());
}

function strides(shape) {
  const out = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

// The value of a variable at an index per dim (missing dims: the current point).
function value(name, at = {}) {
  const v = VARS[name];
  const st = strides(v.shape);
  let flat = 0;
  v.dims.forEach((d, i) => {
    flat += (d in at ? at[d] : cur[d]) * st[i];
  });
  if (v.kind === "s") return v.values[flat];
  return DATA[v.offset + flat];
}

function label(dim, i) {
  const d = DIMS[dim];
  const x = d.values[i];
  return d.numeric ? formatNumber(x) : String(x);
}

function formatNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e15 || a < 1e-3)) return x.toExponential(3);
  if (Number.isInteger(x) && a < 1e15) return x.toLocaleString("en-US");
  return Number(x.toPrecision(4)).toLocaleString("en-US", { maximumSignificantDigits: 4 });
}

function formatValue(x, units) {
  if (typeof x === "string") return x === "" ? "— (none qualifies)" : x;
  if (Number.isNaN(x)) return "—";
  if (units === "bool") return x ? "yes" : "no";
  if (units && units.startsWith("flags:")) {  // a CF flag: the code's meaning
    const meanings = units.slice(6).split(" ");
    return x >= 0 && x < meanings.length ? meanings[x].replace("_", " ") : "— (not served)";
  }
  if (units === "bytes") return formatNumber(x / 1e9) + " GB";
  if (units === "USD") return "$" + formatNumber(x);
  return formatNumber(x) + (units && units !== "1" ? " " + units : "");
}

// The prediction interval of a figure at the current point, or null (no band for it, the
// wafer, or no value).
function bandOf(name, x) {
  const bands = P.bands || {};
  if (!bands.factors || !(name in bands.factors) || typeof x !== "number" || !Number.isFinite(x)) return null;
  if (!("hardware" in cur) || !bands.applies[cur.hardware]) return null;
  const [low, high] = bands.factors[name];
  let band = [x * low, x * high];
  const cap = bands.caps[name];  // physics first: no measured value beats the roofline
  if (cap && cap[1] in VARS && cap[2] in VARS) {
    const a = value(cap[1]), b = value(cap[2]);
    if (Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0) {
      const limit = (x * a) / b;
      band = cap[0] === "high" ? [band[0], Math.min(band[1], Math.max(limit, x))]
                               : [Math.max(band[0], Math.min(limit, x)), band[1]];
    }
  }
  return band;
}

// ---------------------------------------------------------------- controls
function buildControls() {
  const box = document.getElementById("controls");
  for (const d of P.dims) {
    if (d.name === "token_type") continue;
    const div = document.createElement("div");
    div.className = "control";
    const lab = document.createElement("label");
    lab.htmlFor = "ctl-" + d.name;
    lab.textContent = d.long_name + (d.units ? " [" + d.units + "]" : "");
    const val = document.createElement("span");
    val.className = "value";
    val.id = "val-" + d.name;
    lab.appendChild(val);
    div.appendChild(lab);
    let input;
    if (d.numeric) {
      input = document.createElement("input");
      input.type = "range";
      input.min = 0;
      input.max = d.values.length - 1;
      input.step = 1;
      input.value = d.start;
    } else {
      input = document.createElement("select");
      d.values.forEach((x, i) => {
        const o = document.createElement("option");
        o.value = i;
        o.textContent = x;
        input.appendChild(o);
      });
      input.value = d.start;
    }
    input.id = "ctl-" + d.name;
    input.dataset.dim = d.name;
    input.disabled = d.values.length < 2;
    const update = () => {
      if (cur[d.name] === Number(input.value)) return;
      cur[d.name] = Number(input.value);
      render();
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update); // a select may report only a change
    div.appendChild(input);
    box.appendChild(div);
  }
  const fixed = Object.entries(P.fixed);
  document.getElementById("fixed").textContent = fixed.length
    ? "Fixed by the selection: " + fixed.map(([k, v]) => k + " = " + v).join(", ")
    : "";
}

// ---------------------------------------------------------------- panels
function renderValues() {
  const table = document.getElementById("values");
  table.innerHTML = "";
  for (const v of P.vars) {
    if (v.dims.includes("token_type")) {
      DIMS.token_type.values.forEach((t, i) => {
        addRow(table, v, `hardware cost per million ${t.replace("_", " ")} tokens, by their share of the time`,
          value(v.name, { token_type: i }), t);
      });
    } else {
      addRow(table, v, v.long_name, value(v.name), null);
    }
  }
}

function addRow(table, v, text, x, tokenType) {
  const tr = table.insertRow();
  const name = tr.insertCell();
  name.textContent = text + (v.units && !v.units.startsWith("flags:") ? ` [${v.units}]` : "");
  const code = document.createElement("code");  // the cube's name, for slice --var and Python
  code.className = "varname";
  code.textContent = v.name;
  name.appendChild(document.createElement("br"));
  name.appendChild(code);
  name.title = v.name;
  const cell = tr.insertCell();
  cell.className = "num";
  cell.textContent = formatValue(x, v.units);
  const band = bandOf(v.name, x);
  if (band) {  // the measured-error interval of a calibrated figure (GPU points only)
    const span = document.createElement("div");
    span.className = "band";
    span.textContent = `${Math.round(P.bands.level * 100)} %: ${formatValue(band[0], v.units)} to ${formatValue(band[1], v.units)}`;
    cell.appendChild(span);
  }
  cell.dataset.var = v.name;
  cell.dataset.value = typeof x === "string" ? x : Number.isNaN(x) ? "NaN" : String(x);
  if (tokenType !== null) cell.dataset.tokenType = tokenType;
}

const LAYOUT = { margin: { l: 70, r: 20, t: 10, b: 50 }, font: { size: 12 } };
const CONFIG = { displaylogo: false, responsive: true };
// The small bars get no toolbar: Plotly's would sit over the bar itself.
const BAR_CONFIG = { ...CONFIG, displayModeBar: false };

function renderMemory() {
  const panel = document.getElementById("memory-panel");
  if (!("weight_bytes" in VARS && "kv_bytes" in VARS)) {
    panel.style.display = "none";
    return;
  }
  const w = value("weight_bytes") / 1e9;
  const kv = value("kv_bytes") / 1e9;
  const traces = [
    { type: "bar", orientation: "h", y: ["replica"], x: [w], name: "weights", marker: { color: "#4c72b0" },
      hovertemplate: "weights %{x:.4g} GB<extra></extra>" },
    { type: "bar", orientation: "h", y: ["replica"], x: [kv], name: "KV cache", marker: { color: "#dd8452" },
      hovertemplate: "KV cache %{x:.4g} GB<extra></extra>" },
  ];
  const share = (100 * kv) / (w + kv);
  Plotly.react("memory", traces, {
    ...LAYOUT, barmode: "stack", height: 200, showlegend: true, legend: { orientation: "h", y: -0.45, traceorder: "normal" },
    xaxis: { title: { text: "GB (1e9 bytes)" } }, yaxis: { showticklabels: false },
  }, BAR_CONFIG);
  document.getElementById("memory-note").textContent =
    `Total ${formatNumber(w + kv)} GB: weights ${formatNumber(w)} GB, KV cache ${formatNumber(kv)} GB (KV share ${formatNumber(share)} %).`;
}

function renderByType() {
  const panel = document.getElementById("bytype-panel");
  const name = "cost_per_mtok_by_type_usd";
  if (!(name in VARS)) {
    panel.style.display = "none";
    return;
  }
  const types = DIMS.token_type.values;
  const y = types.map((t, i) => value(name, { token_type: i }));
  const extra = [["cost_per_mtok_usd", "blended"], ["cost_per_mtok_output_usd", "per output"]]
    .filter(([n]) => n in VARS);
  Plotly.react("bytype", [
    { type: "bar", x: types.concat(extra.map(([, text]) => text)), y: y.concat(extra.map(([n]) => value(n))),
      marker: { color: types.map(() => "#55a868").concat(extra.map(() => "#8172b3")) },
      hovertemplate: "%{x}: $%{y:.4g} per Mtok<extra></extra>" },
  ], { ...LAYOUT, height: 380, yaxis: { title: { text: "USD per million tokens (log)" }, type: "log", exponentformat: "power" } },
  BAR_CONFIG);
}

function phaseSetup() {
  const size = P.size_dim;
  const candidates = ["units_needed", P.reduced_cost].filter((n) => n && n in VARS);
  const name = candidates.find((n) => VARS[n].dims.includes(size) && VARS[n].dims.includes("isl"));
  return name && DIMS.isl.values.length > 1 && DIMS[size].values.length > 1 ? name : null;
}

function renderPhase() {
  const panel = document.getElementById("phase-panel");
  const name = phaseSetup();
  if (!name) {
    panel.style.display = "none";
    return;
  }
  const size = P.size_dim;
  const xs = DIMS.isl.values;
  const order = P.size_order; // size dim indices sorted by total parameters
  // Log colour scale: units needed span 1 to 10^4 and more; blank where nothing fits or nothing qualifies.
  const z = order.map((j) => xs.map((_, i) => {
    const x = value(name, { isl: i, [size]: j });
    return typeof x === "number" && x > 0 && Number.isFinite(x) ? Math.log10(x) : null;
  }));
  const finite = z.flat().filter((x) => x !== null);
  const top = finite.length ? Math.ceil(Math.max(...finite)) : 1;
  const low = finite.length ? Math.floor(Math.min(...finite)) : 0;
  const tickvals = [];
  for (let k = low; k <= top; k++) tickvals.push(k);
  const ys = order.map((j) => P.size_labels[j]);
  const v = VARS[name];
  document.getElementById("phase-title").textContent =
    name === "units_needed" ? "Phase diagram: units needed" : `Phase diagram: ${VARS[name].long_name} [${VARS[name].units}]`;
  const yNumeric = size === "params";
  const ycur = yNumeric ? DIMS[size].values[cur[size]] : P.size_labels[cur[size]];
  const line = { color: "#111", width: 1.5, dash: "dot" };
  Plotly.react("phase", [
    { type: "heatmap", x: xs, y: yNumeric ? ys : ys.map(String), z: z, colorscale: "Viridis",
      zsmooth: false, zmin: low, zmax: top, customdata: z.map((row) => row.map((x) => (x === null ? null : 10 ** x))),
      colorbar: { title: { text: v.units + " (log)" }, thickness: 12, tickvals,
        ticktext: tickvals.map((k) => formatNumber(10 ** k)) },
      hovertemplate: "ISL %{x:.4g}<br>%{y}<br>" + name + " %{customdata:.4g}<extra></extra>" },
    { type: "scatter", mode: "markers", x: [DIMS.isl.values[cur.isl]], y: [ycur], showlegend: false,
      marker: { symbol: "x-thin", size: 14, line: { width: 3, color: "#e41a1c" } }, hoverinfo: "skip" },
  ], {
    ...LAYOUT, height: 380,
    xaxis: { type: "log", title: { text: "ISL (tokens, log)" } },
    yaxis: yNumeric ? { type: "log", title: { text: "total parameters (log)" } }
      : { type: "category", title: { text: "model (by total parameters)" }, automargin: true },
    shapes: [
      { type: "line", xref: "x", yref: "paper", x0: DIMS.isl.values[cur.isl], x1: DIMS.isl.values[cur.isl], y0: 0, y1: 1, line },
      { type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: ycur, y1: ycur, line },
    ],
  }, CONFIG);
  document.getElementById("phase-note").textContent =
    (name === "units_needed" ? "Blank: no replica holds weights plus KV cache. " : "Blank: nothing qualifies. ") +
    "Crosshair: the current point. Other dims as set on the left.";
}

function renderFrontier() {
  const panel = document.getElementById("frontier-panel");
  const cost = "cost_per_mtok_output_usd";
  const speed = "interactivity_tps";
  if (!(cost in VARS && speed in VARS && "hardware" in DIMS) || P.reduced_cost) {
    panel.style.display = "none";
    return;
  }
  const config = VARS[cost].dims.filter((d) => !["hardware", P.size_dim, "isl", "osl"].includes(d));
  const traces = [];
  const palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"];
  DIMS.hardware.values.forEach((hw, h) => {
    const pts = [];
    const idx = Object.fromEntries(config.map((d) => [d, 0]));
    const total = config.reduce((n, d) => n * DIMS[d].values.length, 1);
    for (let k = 0; k < total; k++) {
      let r = k;
      for (let j = config.length - 1; j >= 0; j--) {
        const n = DIMS[config[j]].values.length;
        idx[config[j]] = r % n;
        r = Math.floor(r / n);
      }
      const at = { ...idx, hardware: h };
      const c = value(cost, at);
      const s = value(speed, at);
      if (Number.isFinite(c) && Number.isFinite(s)) {
        pts.push({ c, s, text: config.map((d) => d + " " + label(d, idx[d])).join(", ") });
      }
    }
    pts.sort((a, b) => b.s - a.s || a.c - b.c);
    const front = [];
    let best = Infinity;
    for (const p of pts) {
      if (p.c < best) {
        front.push(p);
        best = p.c;
      }
    }
    front.reverse();
    const color = palette[h % palette.length];
    traces.push({ type: "scatter", mode: "markers", x: pts.map((p) => p.s), y: pts.map((p) => p.c), name: hw + " (all)",
      marker: { color, size: 4, opacity: 0.25 }, text: pts.map((p) => p.text), showlegend: false,
      hovertemplate: hw + ": %{x:.4g} tok/s, $%{y:.4g}/Mtok<br>%{text}<extra></extra>" });
    traces.push({ type: "scatter", mode: "lines+markers", x: front.map((p) => p.s), y: front.map((p) => p.c), name: hw,
      line: { color, shape: "hv" }, marker: { color, size: 6 }, text: front.map((p) => p.text),
      hovertemplate: hw + " frontier: %{x:.4g} tok/s, $%{y:.4g}/Mtok<br>%{text}<extra></extra>" });
  });
  const c0 = value(cost);
  const s0 = value(speed);
  if (Number.isFinite(c0) && Number.isFinite(s0)) {
    traces.push({ type: "scatter", mode: "markers", x: [s0], y: [c0], name: "current point",
      marker: { symbol: "star", size: 16, color: "#e41a1c", line: { width: 1, color: "#111" } } });
  }
  Plotly.react("frontier", traces, {
    ...LAYOUT, height: 420, margin: { l: 70, r: 20, t: 10, b: 110 }, legend: { orientation: "h", y: -0.3 },
    xaxis: { type: "log", title: { text: "interactivity (output tokens/s per user, log)" } },
    yaxis: { type: "log", title: { text: "USD per million output tokens (log)" } },
  }, CONFIG);
  document.getElementById("frontier-note").textContent = config.length
    ? "Every configuration over " + config.join(", ") + " at this model and ISL; lines: the cheapest at each speed."
    : "One configuration per hardware at this model and ISL.";
}

function render() {
  for (const d of P.dims) {
    const el = document.getElementById("val-" + d.name);
    if (el) el.textContent = label(d.name, cur[d.name]) + (d.units && d.numeric ? " " + d.units : "");
  }
  renderValues();
  renderMemory();
  renderByType();
  renderPhase();
  renderFrontier();
}

async function main() {
  document.getElementById("title").textContent = P.title;
  document.getElementById("subtitle").textContent = P.subtitle;
  if (P.provenance && P.provenance.complete === false) {  // say so before any number is read
    const banner = document.getElementById("incomplete");
    banner.textContent = "This cube is incomplete: points not computed show as — (missing). Run the sweep again to complete it.";
    banner.style.display = "block";
  }
  document.getElementById("provenance-text").textContent = JSON.stringify(P.provenance, null, 2);
  DATA = await decode(P.data);
  buildControls();
  render();
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  document.getElementById("subtitle").textContent = "Could not load the data: " + err;
  throw err;
});
