// Small helpers shared by the review pages (no build step, no third-party code).
window.IVA = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  async function api(path, options) {
    const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
    if (!response.ok) {
      let detail = response.statusText;
      try { const body = await response.json(); detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (e) {}
      throw new Error(`${response.status}: ${detail}`);
    }
    return response.json();
  }
  let intentsCache = null;
  function intents() { return intentsCache || (intentsCache = api("/api/intents").then(d => d.intents)); }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
  function seconds(s) { if (s == null) return "—"; const m = Math.floor(s / 60); return `${m}:${String(Math.round(s % 60)).padStart(2, "0")}`; }
  function clock(ms) { return seconds((ms || 0) / 1000); }
  function mood(v) { return v == null ? null : v <= -0.25 ? "negative" : v >= 0.25 ? "positive" : "neutral"; }
  function sentimentBadge(v) { if (v == null) return "—"; return el("span", {class: "badge " + mood(v)}, `${mood(v)} ${v.toFixed(2)}`); }
  // A small SVG chart: bars (latency) or a line (sentiment) over turns.
  function chart(values, {kind = "bar", min = 0, max = null, height = 120, label = "", testid = ""} = {}) {
    const width = 420, pad = 24, ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`); svg.setAttribute("width", "100%");
    svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label); if (testid) svg.setAttribute("data-testid", testid);
    const top = max === null ? Math.max(1, ...values.map(v => v || 0)) : max;
    const x = i => pad + (values.length <= 1 ? 0 : i * (width - 2 * pad) / (values.length - 1));
    const y = v => height - pad - ((v - min) / (top - min || 1)) * (height - 2 * pad);
    const axis = document.createElementNS(ns, "line");
    axis.setAttribute("x1", pad); axis.setAttribute("x2", width - pad); axis.setAttribute("y1", y(Math.max(min, 0)));
    axis.setAttribute("y2", y(Math.max(min, 0))); axis.setAttribute("stroke", "#dde1e8"); svg.appendChild(axis);
    const t = document.createElementNS(ns, "text"); t.setAttribute("x", 2); t.setAttribute("y", 12); t.textContent = label; svg.appendChild(t);
    if (kind === "bar") {
      const w = Math.max(4, (width - 2 * pad) / Math.max(values.length, 1) * 0.6);
      values.forEach((v, i) => {
        const r = document.createElementNS(ns, "rect");
        const cx = pad + (i + 0.5) * (width - 2 * pad) / values.length;
        r.setAttribute("x", cx - w / 2); r.setAttribute("width", w);
        r.setAttribute("y", y(v || 0)); r.setAttribute("height", Math.max(0, y(0) - y(v || 0)));
        r.setAttribute("fill", (v || 0) > 800 ? "#c0392b" : "#2f6fde");
        const tip = document.createElementNS(ns, "title"); tip.textContent = `${v} ms`; r.appendChild(tip);
        svg.appendChild(r);
      });
    } else {
      const points = values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", points); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#2f6fde"); line.setAttribute("stroke-width", "2");
      svg.appendChild(line);
      values.forEach((v, i) => { const c = document.createElementNS(ns, "circle"); c.setAttribute("cx", x(i)); c.setAttribute("cy", y(v)); c.setAttribute("r", 3); c.setAttribute("fill", mood(v) === "negative" ? "#c0392b" : "#2f6fde"); svg.appendChild(c); });
    }
    return svg;
  }
  return {el, api, intents, when, seconds, clock, mood, sentimentBadge, chart};
})();
