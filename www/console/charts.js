// charts.js - the console's charts: inline SVG made with DOM calls, no
// library, nothing fetched. Each chart is per day: bars (stacked when
// there are several series), an optional line (a prize's stock), today's
// day outlined. Every bar carries data-day, data-series and data-value,
// and a <title> with its number, so what is drawn can be read back.

const NS = 'http://www.w3.org/2000/svg';

function node(name, attrs = {}, parent = null) {
  const n = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (parent) parent.appendChild(n);
  return n;
}

// A round scale top at or above max (1, 2, 5 times a power of ten).
function niceMax(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

// The day's label on the axis: "07-08".
const short = (day) => day.slice(5);

// barChart(container, {days, series, line, today, format})
//   days:   ["2024-07-08", ...]
//   series: [{key, label, color, values: [n per day]}] stacked bottom up
//   line:   optional {key, label, color, values} drawn over the bars
//   today:  index of today's day, or null
export function barChart(container, { days, series, line = null, today = null }) {
  const W = Math.max(320, Math.floor(container.clientWidth || 600)), H = 190;
  const left = 44, right = 8, top = 10, bottom = 20;
  const plotW = W - left - right, plotH = H - top - bottom;
  const totals = days.map((_, d) => series.reduce((s, x) => s + Math.max(0, x.values[d] || 0), 0));
  const lineMax = line ? Math.max(0, ...line.values) : 0;
  const max = niceMax(Math.max(1, ...totals, lineMax));
  const step = plotW / Math.max(1, days.length);
  const barW = Math.max(2, step * 0.7);
  const labelEvery = Math.ceil(38 / step); // a day label every so many days
  const y = (v) => top + plotH - (v / max) * plotH;

  const svg = node('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    class: 'bars' });
  const label = series.map((s) => s.label).join(', ') + (line ? `, ${line.label}` : '');
  node('title', {}, svg).textContent = label;

  // grid: 0, half, max
  for (const v of [0, max / 2, max]) {
    node('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: 'grid' }, svg);
    node('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, svg)
      .textContent = Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1);
  }
  days.forEach((day, d) => {
    const x = left + d * step + (step - barW) / 2;
    if (d === today) {
      node('rect', { x: left + d * step, y: top, width: step, height: plotH, class: 'today' }, svg);
    }
    let base = 0;
    for (const s of series) {
      const v = Math.max(0, s.values[d] || 0);
      const r = node('rect', {
        x, y: y(base + v), width: barW, height: Math.max(0, y(base) - y(base + v)),
        fill: s.color, 'data-day': day, 'data-series': s.key, 'data-value': s.values[d] || 0,
      }, svg);
      node('title', {}, r).textContent = `${day} ${s.label}: ${(s.values[d] || 0).toLocaleString()}`;
      base += v;
    }
    if (d % labelEvery === 0 || d === today) {
      node('text', { x: left + d * step + step / 2, y: H - 6, 'text-anchor': 'middle',
        class: d === today ? 'tick strong' : 'tick' }, svg).textContent = short(day);
    }
  });
  if (line) {
    const pts = line.values.map((v, d) => `${left + d * step + step / 2},${y(v)}`).join(' ');
    node('polyline', { points: pts, fill: 'none', stroke: line.color, 'stroke-width': 2,
      'data-series': line.key }, svg);
    line.values.forEach((v, d) => {
      const c = node('circle', { cx: left + d * step + step / 2, cy: y(v), r: 2.5, fill: line.color,
        'data-day': days[d], 'data-series': line.key, 'data-value': v }, svg);
      node('title', {}, c).textContent = `${days[d]} ${line.label}: ${v.toLocaleString()}`;
    });
  }
  // the legend, in HTML so that it wraps: a swatch (a small SVG, since
  // the page's policy allows no inline style) and the name
  const legend = document.createElement('ul');
  legend.className = 'legend';
  for (const s of [...series, ...(line ? [line] : [])]) {
    const li = document.createElement('li');
    const sw = node('svg', { width: 10, height: 10, 'aria-hidden': 'true' });
    node('rect', { width: 10, height: 10, fill: s.color }, sw);
    li.append(sw, document.createTextNode(s.label));
    legend.appendChild(li);
  }
  container.replaceChildren(svg, legend);
}
